// SPDX-License-Identifier: Apache-2.0
// QGA codec. nlohmann_json is used only in its non-throwing forms.
#include "protocol.h"

#include <nlohmann/json.hpp>

#include <limits>

namespace qga {

using nlohmann::json;

const char* errorKindName(ErrorKind kind)
{
    switch (kind) {
    case ErrorKind::Timeout:
        return "timeout";
    case ErrorKind::Transport:
        return "transport";
    case ErrorKind::Protocol:
        return "protocol";
    case ErrorKind::AgentError:
        return "agent-error";
    case ErrorKind::CommandDisabled:
        return "command-disabled";
    case ErrorKind::CommandNotFound:
        return "command-not-found";
    case ErrorKind::AgentUnavailable:
        return "agent-unavailable";
    case ErrorKind::Unsupported:
        return "unsupported";
    case ErrorKind::NotRunning:
        return "not-running";
    case ErrorKind::Cancelled:
        return "cancelled";
    case ErrorKind::BadClock:
        return "bad-clock";
    case ErrorKind::Internal:
        return "internal";
    }
    return "internal";
}
std::optional<ErrorKind> errorKindFromName(std::string_view name)
{
    for (int k = 0; k <= int(ErrorKind::Internal); ++k)
        if (name == errorKindName(ErrorKind(k)))
            return ErrorKind(k);
    return std::nullopt;
}

bool AgentInfo::supports(std::string_view command) const
{
    for (const AgentCommand& c : commands) {
        if (c.name == command)
            return c.enabled;
    }
    return false;
}

namespace protocol {

std::optional<Expected<std::string>> takeReplyLine(std::string& buffer)
{
    for (;;) {
        const std::size_t nl = buffer.find('\n');
        if (nl == std::string::npos) {
            if (buffer.size() > kMaxReplyBytes)
                return Expected<std::string>(
                    makeError(ErrorKind::Protocol, "guest agent reply exceeds the 64 KiB limit"));
            return std::nullopt;
        }
        std::string line = buffer.substr(0, nl);
        buffer.erase(0, nl + 1);
        const std::size_t start = line.find_first_not_of(kSyncDelimiter);
        if (start == std::string::npos)
            continue; // only delimiters: not a reply
        return Expected<std::string>(line.substr(start));
    }
}

static std::string line(const json& j)
{
    return j.dump() + "\n";
}

std::string commandRequest(std::string_view command)
{
    return line(json{{"execute", command}});
}

std::string syncRequest(int64_t id)
{
    return line(json{{"execute", "guest-sync"}, {"arguments", {{"id", id}}}});
}

std::string syncDelimitedRequest(int64_t id)
{
    return std::string(1, kSyncDelimiter) +
           line(json{{"execute", "guest-sync-delimited"}, {"arguments", {{"id", id}}}});
}

std::string setTimeRequest(int64_t guestNs)
{
    return line(json{{"execute", "guest-set-time"}, {"arguments", {{"time", guestNs}}}});
}

std::string setTimeFromRtcRequest()
{
    return commandRequest("guest-set-time");
}

static Error protocolError(std::string message)
{
    return makeError(ErrorKind::Protocol, std::move(message));
}

ErrorKind classifyAgentError(std::string_view errorClass, std::string_view description)
{
    // qemu-ga 7.2 reports a --block-rpcs command as CommandNotFound with
    // "Command X has been disabled"; older ones as GenericError.
    if (description.find("has been disabled") != std::string_view::npos)
        return ErrorKind::CommandDisabled;
    // libvirt passes the description on without the class: its words.
    if (errorClass == "CommandNotFound" ||
        description.find("has not been found") != std::string_view::npos)
        return ErrorKind::CommandNotFound;
    return ErrorKind::AgentError;
}

// Parses a reply into a JSON object, or an error for anything else.
static Expected<json> parseObject(std::string_view reply)
{
    // The agent may prefix a reply with the 0xFF delimiter; it is not JSON.
    while (!reply.empty() && reply.front() == kSyncDelimiter)
        reply.remove_prefix(1);
    if (reply.size() > kMaxReplyBytes)
        return protocolError("reply of " + std::to_string(reply.size()) +
                             " bytes exceeds the 64 KiB limit");
    if (reply.find_first_not_of(" \t\r\n") == std::string_view::npos)
        return protocolError("empty reply");
    json j = json::parse(reply.begin(), reply.end(), nullptr, false);
    if (j.is_discarded())
        return protocolError("reply is not valid JSON");
    if (!j.is_object())
        return protocolError("reply is not a JSON object");
    return j;
}

static Expected<json> parseReturnJson(std::string_view reply)
{
    Expected<json> parsed = parseObject(reply);
    if (!parsed)
        return parsed.error();
    json& j = *parsed;
    if (auto err = j.find("error"); err != j.end()) {
        std::string cls = "GenericError";
        std::string desc = "(no description)";
        if (err->is_object()) {
            if (auto c = err->find("class"); c != err->end() && c->is_string())
                cls = c->get<std::string>();
            if (auto d = err->find("desc"); d != err->end() && d->is_string())
                desc = d->get<std::string>();
        }
        return makeError(classifyAgentError(cls, desc), "guest agent error " + cls + ": " + desc);
    }
    auto ret = j.find("return");
    if (ret == j.end())
        return protocolError("reply has neither \"return\" nor \"error\"");
    return json(std::move(*ret));
}

Expected<std::string> parseReturn(std::string_view reply)
{
    Expected<json> ret = parseReturnJson(reply);
    if (!ret)
        return ret.error();
    return ret->dump(-1, ' ', false, json::error_handler_t::replace);
}

Expected<void> parseEmptyReply(std::string_view reply)
{
    Expected<json> ret = parseReturnJson(reply);
    if (!ret)
        return ret.error();
    if (!ret->is_object() || !ret->empty())
        return protocolError("expected an empty return object");
    return {};
}

// Reads a JSON integer that fits int64_t, rejecting floats, strings, overflow.
static Expected<int64_t> integerValue(const json& v, const char* what)
{
    if (v.is_number_unsigned()) {
        uint64_t u = v.get<uint64_t>();
        if (u > uint64_t(std::numeric_limits<int64_t>::max()))
            return protocolError(std::string(what) + " overflows 64 bits");
        return int64_t(u);
    }
    if (v.is_number_integer())
        return v.get<int64_t>();
    if (v.is_number_float())
        return protocolError(std::string(what) + " is not an integer");
    return protocolError(std::string(what) + " is not a number");
}

Expected<int64_t> parseSyncReply(std::string_view reply)
{
    Expected<json> ret = parseReturnJson(reply);
    if (!ret)
        return ret.error();
    return integerValue(*ret, "sync id");
}

Expected<int64_t> parseGetTimeReply(std::string_view reply)
{
    Expected<json> ret = parseReturnJson(reply);
    if (!ret)
        return ret.error();
    // A guest clock before 1970 is negative: still a time, and correctable.
    return integerValue(*ret, "guest time");
}

Expected<AgentInfo> parseInfoReply(std::string_view reply)
{
    Expected<json> ret = parseReturnJson(reply);
    if (!ret)
        return ret.error();
    const json& r = *ret;
    if (!r.is_object())
        return protocolError("guest-info return is not an object");
    AgentInfo info;
    if (auto v = r.find("version"); v != r.end() && v->is_string())
        info.version = v->get<std::string>();
    auto cmds = r.find("supported_commands");
    if (cmds == r.end() || !cmds->is_array())
        return protocolError("guest-info has no supported_commands array");
    for (const json& c : *cmds) {
        if (!c.is_object())
            return protocolError("supported_commands entry is not an object");
        auto name = c.find("name");
        if (name == c.end() || !name->is_string())
            return protocolError("supported_commands entry has no name");
        AgentCommand cmd;
        cmd.name = name->get<std::string>();
        if (auto en = c.find("enabled"); en != c.end()) {
            if (!en->is_boolean())
                return protocolError("supported_commands 'enabled' is not a boolean");
            cmd.enabled = en->get<bool>();
        }
        info.commands.push_back(std::move(cmd));
    }
    return info;
}

} // namespace protocol
} // namespace qga
