// SPDX-License-Identifier: Apache-2.0
// FakeQgaServer implementation: one thread, poll() on the listening socket, the
// client and a wake pipe so that the destructor never hangs.
#include "fakeqgaserver.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

FakeQgaServer::FakeQgaServer(std::string socketPath) : m_path(std::move(socketPath))
{
    m_script = &FakeQgaServer::defaultAction;
}

FakeQgaServer::~FakeQgaServer()
{
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
        m_releaseFlag = true;
    }
    m_released.notify_all();
    if (m_wakePipe[1] >= 0) {
        char c = 'x';
        (void)!::write(m_wakePipe[1], &c, 1);
    }
    if (m_thread.joinable())
        m_thread.join();
    for (int fd : {m_listenFd, m_wakePipe[0], m_wakePipe[1]})
        if (fd >= 0)
            ::close(fd);
    ::unlink(m_path.c_str());
}

bool FakeQgaServer::start()
{
    if (::pipe2(m_wakePipe, O_CLOEXEC) < 0)
        return false;
    m_listenFd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, m_path.c_str(), sizeof(addr.sun_path) - 1);
    ::unlink(m_path.c_str());
    if (::bind(m_listenFd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0 ||
        ::listen(m_listenFd, 4) < 0)
        return false;
    m_thread = std::thread([this] { run(); });
    return true;
}

void FakeQgaServer::setScript(Script script)
{
    std::lock_guard lock(m_mutex);
    m_script = std::move(script);
}

void FakeQgaServer::release()
{
    {
        std::lock_guard lock(m_mutex);
        m_releaseFlag = true;
    }
    m_released.notify_all();
}

int FakeQgaServer::connectionsAccepted() const
{
    std::lock_guard lock(m_mutex);
    return m_accepted;
}

std::vector<std::string> FakeQgaServer::commandsSeen() const
{
    std::lock_guard lock(m_mutex);
    return m_seen;
}

std::string FakeQgaServer::syncIdOf(const std::string& line)
{
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("arguments"))
        return "0";
    return j["arguments"].value("id", nlohmann::json(0)).dump();
}

FakeQgaServer::Action FakeQgaServer::defaultAction(const std::string& command,
                                                   const std::string& line)
{
    if (command == "guest-sync-delimited")
        return {Action::Reply, "\xff{\"return\": " + syncIdOf(line) + "}\n"};
    if (command == "guest-sync")
        return {Action::Reply, "{\"return\": " + syncIdOf(line) + "}\n"};
    if (command == "guest-get-time") {
        timespec ts{};
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
        return {Action::Reply, "{\"return\": " + std::to_string(ns) + "}\n"};
    }
    if (command == "guest-info")
        return {Action::Reply,
                "{\"return\": {\"version\": \"7.2.0\", \"supported_commands\": ["
                "{\"enabled\": true, \"name\": \"guest-get-time\", \"success-response\": true},"
                "{\"enabled\": false, \"name\": \"guest-set-time\", \"success-response\": true}"
                "]}}\n"};
    if (command == "guest-ping" || command == "guest-set-time")
        return {Action::Reply, "{\"return\": {}}\n"};
    return {Action::Reply, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command " +
                               command + " has not been found\"}}\n"};
}

void FakeQgaServer::run()
{
    for (;;) {
        pollfd p[2] = {{m_listenFd, POLLIN, 0}, {m_wakePipe[0], POLLIN, 0}};
        if (::poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents)
            return;
        int fd = ::accept4(m_listenFd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        {
            std::lock_guard lock(m_mutex);
            ++m_accepted;
        }
        serveConnection(fd);
        ::close(fd);
        std::lock_guard lock(m_mutex);
        if (m_stopping)
            return;
    }
}

void FakeQgaServer::serveConnection(int fd)
{
    std::string buffer;
    for (;;) {
        pollfd p[2] = {{fd, POLLIN, 0}, {m_wakePipe[0], POLLIN, 0}};
        if (::poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents)
            return;
        char chunk[4096];
        ssize_t r = ::read(fd, chunk, sizeof(chunk));
        if (r <= 0)
            return;
        buffer.append(chunk, std::size_t(r));
        std::size_t nl;
        while ((nl = buffer.find('\n')) != std::string::npos) {
            std::string line = buffer.substr(0, nl);
            buffer.erase(0, nl + 1);
            std::size_t start = line.find_first_not_of('\xff');
            if (start == std::string::npos)
                continue;
            line = line.substr(start);
            auto j = nlohmann::json::parse(line, nullptr, false);
            std::string command = (!j.is_discarded() && j.is_object() && j.contains("execute") &&
                                   j["execute"].is_string())
                                      ? j["execute"].get<std::string>()
                                      : std::string();
            Script script;
            {
                std::lock_guard lock(m_mutex);
                m_seen.push_back(command);
                script = m_script;
            }
            Action a = script(command, line);
            if (a.kind == Action::Close)
                return;
            if (a.kind == Action::NoReply)
                continue;
            if (a.kind == Action::HoldThenReply) {
                std::unique_lock lock(m_mutex);
                m_released.wait(lock, [this] { return m_releaseFlag; });
                if (m_stopping)
                    return;
            }
            std::size_t done = 0;
            while (done < a.text.size()) {
                ssize_t w = ::send(fd, a.text.data() + done, a.text.size() - done, MSG_NOSIGNAL);
                if (w <= 0)
                    return;
                done += std::size_t(w);
            }
        }
    }
}
