// SPDX-License-Identifier: Apache-2.0
// Value-or-error results for fallible operations (no exceptions cross module
// boundaries). Every error carries a kind a caller can branch on and a message
// an operator can read.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace qga {

enum class ErrorKind {
    Timeout,          // no reply within the deadline
    Transport,        // socket / libvirt connection failure
    Protocol,         // malformed, oversize or unexpected reply
    AgentError,       // the agent answered with an error
    CommandDisabled,  // the command is blocked in the agent (--block-rpcs)
    CommandNotFound,  // the agent does not know the command
    AgentUnavailable, // the agent is not connected (yet)
    Unsupported,      // no agent channel, or the hypervisor cannot do it
    NotRunning,       // the domain is not running
    Cancelled,        // the caller gave up (domain paused/stopped meanwhile)
    BadClock,         // the guest clock does not behave like a clock
    Internal,
};

const char* errorKindName(ErrorKind kind);
// The kind named by errorKindName; nullopt for any other text.
std::optional<ErrorKind> errorKindFromName(std::string_view name);

struct Error
{
    ErrorKind kind = ErrorKind::Internal;
    std::string message;
};

template <typename T> class [[nodiscard]] Expected
{
public:
    Expected(T value) : m_v(std::move(value)) {}
    Expected(Error error) : m_v(std::move(error)) {}

    bool ok() const { return m_v.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(m_v); }
    const T& value() const { return std::get<0>(m_v); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(m_v); }

private:
    std::variant<T, Error> m_v;
};

template <> class [[nodiscard]] Expected<void>
{
public:
    Expected() = default;
    Expected(Error error) : m_error(std::move(error)) {}

    bool ok() const { return !m_error.has_value(); }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return *m_error; }

private:
    std::optional<Error> m_error;
};

inline Error makeError(ErrorKind kind, std::string message)
{
    return Error{kind, std::move(message)};
}

} // namespace qga
