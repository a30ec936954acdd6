// SPDX-License-Identifier: Apache-2.0
// The optional /metrics endpoint (metrics-listen = HOST:PORT, off by
// default), as node_exporter-style exporters serve it: HTTP/1.0, GET
// /metrics only, one request per connection, bounded request size and time.
// No authentication: bind it to loopback (or a management network) only.
#pragma once

#include <QObject>
#include <QString>

#include <functional>
#include <string>

class QTcpServer;

namespace clocksync {

class MetricsServer : public QObject
{
    Q_OBJECT
public:
    explicit MetricsServer(std::function<std::string()> render, QObject* parent = nullptr);
    ~MetricsServer() override;
    // "127.0.0.1:9978", "[::1]:9978", "localhost:9978"; an error text or empty.
    QString listen(const QString& hostPort);
    quint16 port() const;

private:
    void onConnection();
    std::function<std::string()> m_render;
    QTcpServer* m_server;
};

// Splits HOST:PORT ([IPv6]:PORT too); false if it is not one.
bool parseHostPort(const QString& text, QString& host, quint16& port);

} // namespace clocksync
