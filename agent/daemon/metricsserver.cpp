// SPDX-License-Identifier: Apache-2.0
// MetricsServer.
#include "metricsserver.h"

#include <QHostAddress>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTimer>

namespace clocksync {

namespace {

constexpr qsizetype kMaxRequest = 8192;
constexpr int kRequestTimeoutMs = 5000;

QByteArray response(const char* status, const QByteArray& type, const QByteArray& body)
{
    return QByteArray("HTTP/1.0 ") + status + "\r\nContent-Type: " + type +
           "\r\nContent-Length: " + QByteArray::number(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
}

} // namespace

bool parseHostPort(const QString& text, QString& host, quint16& port)
{
    const qsizetype colon = text.lastIndexOf(':');
    if (colon <= 0)
        return false;
    host = text.left(colon);
    if (host.startsWith('[') && host.endsWith(']'))
        host = host.mid(1, host.size() - 2);
    bool ok = false;
    const uint p = text.mid(colon + 1).toUInt(&ok);
    if (!ok || p > 65535) // 0: any free port (tests)
        return false;
    port = quint16(p);
    return host == QLatin1String("localhost") || !QHostAddress(host).isNull();
}

MetricsServer::MetricsServer(std::function<std::string()> render, QObject* parent)
    : QObject(parent), m_render(std::move(render)), m_server(new QTcpServer(this))
{
    connect(m_server, &QTcpServer::newConnection, this, &MetricsServer::onConnection);
}

MetricsServer::~MetricsServer() = default;

QString MetricsServer::listen(const QString& hostPort)
{
    QString host;
    quint16 port = 0;
    if (!parseHostPort(hostPort, host, port))
        return QStringLiteral("'%1' is not HOST:PORT").arg(hostPort);
    const QHostAddress address = host == QLatin1String("localhost")
                                     ? QHostAddress(QHostAddress::LocalHost)
                                     : QHostAddress(host);
    if (!m_server->listen(address, port))
        return m_server->errorString();
    return {};
}

quint16 MetricsServer::port() const
{
    return m_server->serverPort();
}

void MetricsServer::onConnection()
{
    while (QTcpSocket* s = m_server->nextPendingConnection()) {
        connect(s, &QTcpSocket::disconnected, s, &QObject::deleteLater);
        QTimer::singleShot(kRequestTimeoutMs, s, [s] { s->abort(); });
        connect(s, &QTcpSocket::readyRead, s, [this, s] {
            if (s->property("answered").toBool())
                return;
            const QByteArray head = s->peek(kMaxRequest + 1);
            if (!head.contains("\r\n\r\n") && !head.contains("\n\n")) {
                if (head.size() > kMaxRequest)
                    s->abort();
                return; // the rest of the request has not arrived yet
            }
            s->setProperty("answered", true);
            const QList<QByteArray> line = head.left(head.indexOf('\n')).trimmed().split(' ');
            const bool get = line.size() >= 2 && line[0] == "GET";
            const QByteArray path = get ? line[1].split('?').first() : QByteArray();
            if (path == "/metrics")
                s->write(response("200 OK", "text/plain; version=0.0.4; charset=utf-8",
                                  QByteArray::fromStdString(m_render())));
            else
                s->write(response(get ? "404 Not Found" : "405 Method Not Allowed", "text/plain",
                                  "virt-clocksyncd serves GET /metrics only\n"));
            s->disconnectFromHost();
        });
    }
}

} // namespace clocksync
