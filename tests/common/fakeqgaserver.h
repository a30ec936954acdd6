// SPDX-License-Identifier: Apache-2.0
// A scripted QGA server on a unix socket, for driving SocketAgent in tests.
// Each request line is handed to a script that decides the reply: a normal
// answer, garbage, nothing, a stale id, an oversize blob, or a reply held back
// until the test releases it. No sleeps: the test waits on what it observes.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

class FakeQgaServer
{
public:
    struct Action
    {
        enum Kind { Reply, NoReply, Close, HoldThenReply } kind = Reply;
        std::string text; // sent as is (add the newline yourself)
    };
    // command name, full request line (without newline), sync id if any
    using Script = std::function<Action(const std::string& command, const std::string& line)>;

    explicit FakeQgaServer(std::string socketPath);
    ~FakeQgaServer();

    bool start();
    void setScript(Script script);
    // Releases replies held by HoldThenReply.
    void release();
    std::string path() const { return m_path; }
    int connectionsAccepted() const;
    std::vector<std::string> commandsSeen() const;

    // The reply a real qemu-ga would give (sync ids echoed, time = host now).
    static Action defaultAction(const std::string& command, const std::string& line);
    static std::string syncIdOf(const std::string& line);

private:
    void run();
    void serveConnection(int fd);

    std::string m_path;
    int m_listenFd = -1;
    int m_wakePipe[2] = {-1, -1};
    std::thread m_thread;
    mutable std::mutex m_mutex;
    std::condition_variable m_released;
    bool m_releaseFlag = false;
    bool m_stopping = false;
    Script m_script;
    int m_accepted = 0;
    std::vector<std::string> m_seen;
};
