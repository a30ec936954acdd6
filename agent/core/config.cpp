// Config parser.
#include "config.h"

#include <QFile>

namespace clocksync {

const char* transportName(Transport t)
{
    return t == Transport::LibvirtRaw ? "libvirt-raw" : "libvirt";
}

namespace {

QString yesNo(bool b)
{
    return QString::fromLatin1(b ? "yes" : "no");
}

// Never null: null means "no such key" to configValue's callers.
QString text(const QString& s)
{
    return s.isNull() ? QString("") : s;
}

} // namespace

std::span<const ConfigKey> configKeys()
{
    using C = const DaemonConfig&;
    static constexpr ConfigKey keys[] = {
        {"daemon", "uri", [](C c) { return text(c.uri); }},
        {"daemon", "transport",
         [](C c) { return QString::fromLatin1(transportName(c.transport)); }},
        {"daemon", "concurrency", [](C c) { return QString::number(c.concurrency); }},
        {"daemon", "agent-wait-seconds", [](C c) { return QString::number(c.agentWaitSeconds); }},
        {"daemon", "agent-timeout-seconds",
         [](C c) { return QString::number(c.agentTimeoutSeconds); }},
        {"daemon", "rtc-change-min-interval",
         [](C c) { return QString::number(c.rtcChangeMinIntervalSeconds); }},
        {"daemon", "control-socket", [](C c) { return text(c.controlSocket); }},
        {"daemon", "control-group", [](C c) { return text(c.controlGroup); }},
        {"daemon", "metrics-textfile", [](C c) { return text(c.metricsTextfile); }},
        {"sync", "samples", [](C c) { return QString::number(c.policy.samples); }},
        {"sync", "enabled", [](C c) { return yesNo(c.policy.enabled); }},
        {"sync", "mode", [](C c) { return QString::fromLatin1(syncModeName(c.policy.mode)); }},
        {"sync", "tolerance-us", [](C c) { return QString::number(c.policy.skipBelowNs / 1000); }},
        {"sync", "target-us", [](C c) { return QString::number(c.policy.targetNs / 1000); }},
        {"sync", "attempts", [](C c) { return QString::number(c.policy.attempts); }},
        {"sync", "sync-on-boot", [](C c) { return yesNo(c.policy.syncOnBoot); }},
        {"sync", "watch-interval", [](C c) { return QString::number(c.policy.watchIntervalS); }},
        {"sync", "watch-correct", [](C c) { return yesNo(c.policy.watchCorrect); }},
        {"sync", "on-rtc-change", [](C c) { return yesNo(c.policy.onRtcChange); }},
        {"sync", "max-backward-step-ms",
         [](C c) { return QString::number(c.policy.maxBackwardStepNs / 1'000'000); }},
    };
    return keys;
}

QString configValue(const DaemonConfig& c, const ConfigKey& k)
{
    return k.value ? k.value(c) : QString();
}

QString formatConfig(const DaemonConfig& c)
{
    QString out;
    const char* section = nullptr;
    for (const ConfigKey& k : configKeys()) {
        if (!section || qstrcmp(section, k.section) != 0) {
            section = k.section;
            out += QStringLiteral("%1[%2]\n").arg(out.isEmpty() ? "" : "\n", k.section);
        }
        out += QStringLiteral("%1 = %2\n").arg(k.key, configValue(c, k));
    }
    return out;
}

namespace {

bool knownKey(const QString& section, const QString& key)
{
    for (const ConfigKey& k : configKeys())
        if (section == QLatin1String(k.section) && key == QLatin1String(k.key))
            return true;
    return false;
}

struct Context
{
    DaemonConfig& c;
    QStringList& warnings;
    QString where;
    void warn(const QString& what) { warnings << where + ": " + what + ", ignoring"; }
};

void setDaemonKey(Context& ctx, const QString& key, const QString& value)
{
    DaemonConfig& c = ctx.c;
    auto bad = [&](const char* expected) {
        ctx.warn(
            QStringLiteral("invalid value '%1' for '%2' (expected %3)").arg(value, key, expected));
    };
    if (key == "uri") {
        if (value.isEmpty())
            return bad("a libvirt URI");
        c.uri = value;
    } else if (key == "transport") {
        if (value == "libvirt")
            c.transport = Transport::Libvirt;
        else if (value == "libvirt-raw")
            c.transport = Transport::LibvirtRaw;
        else
            bad("libvirt or libvirt-raw");
    } else if (key == "concurrency") {
        if (auto v = parseBounded(value, 1, 64))
            c.concurrency = int(*v);
        else
            bad("1..64");
    } else if (key == "agent-wait-seconds") {
        if (auto v = parseBounded(value, 1, 3600))
            c.agentWaitSeconds = int(*v);
        else
            bad("1..3600");
    } else if (key == "agent-timeout-seconds") {
        if (auto v = parseBounded(value, 1, 300))
            c.agentTimeoutSeconds = int(*v);
        else
            bad("1..300");
    } else if (key == "rtc-change-min-interval") {
        if (auto v = parseBounded(value, 1, 3600))
            c.rtcChangeMinIntervalSeconds = int(*v);
        else
            bad("1..3600");
    } else if (key == "control-socket") {
        c.controlSocket = value;
    } else if (key == "control-group") {
        c.controlGroup = value;
    } else if (key == "metrics-textfile") {
        c.metricsTextfile = value;
    } else {
        ctx.warn(QStringLiteral("key '%1' has no setter (a bug)").arg(key));
    }
}

void setSyncKey(Context& ctx, const QString& key, const QString& value)
{
    if (key == "samples") {
        if (auto v = parseBounded(value, 1, 64))
            ctx.c.policy.samples = int(*v);
        else
            ctx.warn(
                QStringLiteral("invalid value '%1' for 'samples' (expected 1..64)").arg(value));
        return;
    }
    // The rest are the per-domain policy keys, with the same parser.
    PolicyOverride o;
    if (auto err = setPolicyKey(o, key, value))
        return ctx.warn(*err);
    ctx.c.policy = applyOverride(ctx.c.policy, o);
}

} // namespace

ConfigParse parseConfig(const QString& text, const QString& fileName)
{
    ConfigParse out;
    QString section;
    const QStringList lines = text.split('\n');
    for (int i = 0; i < lines.size(); ++i) {
        Context ctx{out.config, out.warnings, QStringLiteral("%1:%2").arg(fileName).arg(i + 1)};
        QString line = lines[i].trimmed();
        if (line.isEmpty() || line.startsWith('#') || line.startsWith(';'))
            continue;
        if (line.startsWith('[')) {
            if (!line.endsWith(']')) {
                ctx.warn(QStringLiteral("malformed section header '%1'").arg(line));
                section = QStringLiteral("?");
                continue;
            }
            section = line.mid(1, line.size() - 2).trimmed();
            if (section != "daemon" && section != "sync")
                ctx.warn(QStringLiteral("unknown section [%1]").arg(section));
            continue;
        }
        const qsizetype eq = line.indexOf('=');
        if (eq <= 0) {
            ctx.warn(QStringLiteral("expected 'key = value', got '%1'").arg(line));
            continue;
        }
        const QString key = line.left(eq).trimmed();
        QString value = line.mid(eq + 1).trimmed();
        if (const qsizetype hash = value.indexOf(" #"); hash >= 0)
            value = value.left(hash).trimmed();
        if (section.isEmpty())
            ctx.warn(QStringLiteral("key '%1' outside of a section").arg(key));
        else if (section != "daemon" && section != "sync")
            continue; // reported with the section
        else if (!knownKey(section, key))
            ctx.warn(QStringLiteral("unknown key '%1' in [%2]").arg(key, section));
        else if (section == "daemon")
            setDaemonKey(ctx, key, value);
        else
            setSyncKey(ctx, key, value);
    }
    return out;
}

ConfigParse loadConfig(const QString& path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) {
        ConfigParse out;
        out.warnings
            << QStringLiteral("%1: cannot read (%2), using defaults").arg(path, f.errorString());
        return out;
    }
    const QByteArray data = f.read(1024 * 1024);
    return parseConfig(QString::fromUtf8(data), path);
}

} // namespace clocksync
