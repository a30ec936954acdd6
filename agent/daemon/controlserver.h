// SPDX-License-Identifier: Apache-2.0
// The daemon's control socket: a unix socket (0660), peer credentials checked
// at accept (root, the daemon's own uid, or members of a configured group;
// everyone else is refused with an error line and a log line), JSON-lines
// requests handled on the main loop without ever blocking it: non-blocking
// I/O, bounded requests, and an idle timeout for clients that have nothing in
// flight and send nothing.
// One daemon per socket: a second one is refused instead of taking it over.
#pragma once

#include "controlprotocol.h"

#include <QObject>
#include <QSocketNotifier>
#include <QTimer>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sys/types.h>
#include <vector>

namespace clocksync {

class ControlServer : public QObject
{
    Q_OBJECT
public:
    using Reply = std::function<void(const nlohmann::json&)>;
    using Handler = std::function<void(const ControlRequest&, Reply)>;

    ControlServer(QString path, std::optional<gid_t> group, QObject* parent = nullptr);
    ~ControlServer() override;

    // Error text, or empty on success. The socket is guarded by a lock file
    // (PATH.lock, holding the owner's pid): while another daemon holds it,
    // listen() fails and anotherInstance() is true — its socket is left alone.
    QString listen();
    bool anotherInstance() const { return m_anotherInstance; }
    void setHandler(Handler h) { m_handler = std::move(h); }
    void setIdleTimeoutMs(int ms) { m_idleMs = ms; }
    QString path() const { return m_path; }
    int clients() const { return int(m_clients.size()); }
    // Replies written but not yet taken by the clients (bounded: see onReadable).
    std::size_t pendingReplyBytes() const;

    // Connected clients at most; the next one gets an error line.
    static constexpr std::size_t kMaxControlClients = 64;
    // A client with this much unread reply is not read from until it catches up.
    static constexpr std::size_t kMaxPendingReplies = 1024 * 1024;

    // Whether a peer may talk to the daemon: root, the daemon's own user, or a
    // member (primary or supplementary) of the control group. groups: the
    // peer's supplementary groups (peerGroups).
    static bool peerAllowed(uid_t uid, gid_t gid, std::optional<gid_t> group,
                            const std::vector<gid_t>& groups = {});
    // A connected unix socket's peer's supplementary groups as the kernel
    // had them at connect (SO_PEERGROUPS, Linux 4.13): no NSS look-up (LDAP,
    // SSSD) on the main thread, no /proc read racing pid reuse. Empty if the
    // kernel cannot say.
    static std::vector<gid_t> peerGroups(int fd);

private:
    struct Client
    {
        int fd = -1;
        std::unique_ptr<QSocketNotifier> readN;
        std::unique_ptr<QSocketNotifier> writeN;
        std::unique_ptr<QTimer> idle;
        std::string in;
        std::string out;
        bool closing = false;
        int inFlight = 0; // requests handed to the handler, not answered yet
    };
    void onAccept();
    void onReadable(int id);
    bool readInput(int id);
    void handleLines(int id);
    void onWritable(int id);
    void send(int id, const nlohmann::json& j);
    void answer(int id, const nlohmann::json& j); // the reply to a handled request
    void armIdle(Client& c);
    void drop(int id);

    QString m_path;
    std::optional<gid_t> m_group;
    int m_listenFd = -1;
    int m_lockFd = -1;
    bool m_anotherInstance = false;
    int m_nextId = 1;
    int m_idleMs = 30'000;
    std::unique_ptr<QSocketNotifier> m_acceptN;
    std::map<int, Client> m_clients;
    Handler m_handler;
};

} // namespace clocksync
