// SPDX-License-Identifier: Apache-2.0
// libFuzzer: the control server's connection handling, not just its parser.
// The input is a script for up to four clients: connect, send a chunk, stop
// reading (SHUT_RD), stop writing (SHUT_WR), read what is there, close — with
// the server's event loop run between steps. Whatever the script, the server
// must not crash (ASan), must let every client go once they have closed, and
// must not keep replies for clients that are gone.
#include "controlserver.h"
#include "unixclient.h"

#include <QCoreApplication>
#include <QTemporaryDir>
#include <QTimer>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

using namespace clocksync;

namespace {

struct World
{
    int argc = 1;
    char name[5] = "fuzz";
    char* argv[2] = {name, nullptr};
    QCoreApplication app{argc, argv};
    QTemporaryDir dir;
    std::unique_ptr<ControlServer> server;

    World()
    {
        server = std::make_unique<ControlServer>(dir.filePath("c.sock"), std::nullopt);
        server->setHandler([](const ControlRequest& req, ControlServer::Reply reply) {
            if (req.command == ControlCommand::Sync) { // answered later, like a real sync
                QTimer::singleShot(0, [reply] { reply(controlOk()); });
                return;
            }
            nlohmann::json j = controlOk();
            if (req.command == ControlCommand::Metrics) // a large reply
                j["text"] = std::string(8192, 'm');
            reply(j);
        });
        if (!server->listen().isEmpty())
            __builtin_trap();
    }
};

World& world()
{
    static World w;
    return w;
}

void pump()
{
    QCoreApplication::processEvents(QEventLoop::AllEvents);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    World& w = world();
    std::vector<int> fds;
    std::size_t i = 0;
    while (i < size) {
        const uint8_t op = data[i++];
        const std::size_t which = fds.empty() ? 0 : (op >> 3) % fds.size();
        switch (op & 7) {
        case 0:
            if (fds.size() < 4)
                if (const int fd = connectUnix(w.server->path(), SOCK_NONBLOCK); fd >= 0)
                    fds.push_back(fd);
            break;
        case 1:
        case 2:
        case 3: { // the most common step: send the next 1..256 bytes
            if (fds.empty() || i >= size)
                break;
            const std::size_t want = std::size_t(data[i]) + 1;
            ++i;
            const std::size_t len = std::min(want, size - i);
            (void)::send(fds[which], data + i, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            i += len;
            break;
        }
        case 4:
            if (!fds.empty())
                ::shutdown(fds[which], SHUT_RD);
            break;
        case 5:
            if (!fds.empty())
                ::shutdown(fds[which], SHUT_WR);
            break;
        case 6:
            if (!fds.empty()) {
                char buf[65536];
                (void)::recv(fds[which], buf, sizeof(buf), MSG_DONTWAIT);
            }
            break;
        case 7:
            if (!fds.empty()) {
                ::close(fds[which]);
                fds.erase(fds.begin() + std::ptrdiff_t(which));
            }
            break;
        }
        pump();
    }
    for (int fd : fds)
        ::close(fd);
    for (int n = 0; n < 1000 && w.server->clients() > 0; ++n)
        pump();
    if (w.server->clients() != 0 || w.server->pendingReplyBytes() != 0)
        __builtin_trap();
    return 0;
}
