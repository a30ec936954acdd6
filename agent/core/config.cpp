// SPDX-License-Identifier: Apache-2.0
// Config parser: a loop over the settings table.
#include "config.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

namespace clocksync {

QString formatConfig(const DaemonConfig& c)
{
    QString out;
    const char* section = nullptr;
    for (const Setting& k : settings()) {
        if (!k.section)
            continue; // domain metadata only
        if (!section || qstrcmp(section, k.section) != 0) {
            section = k.section;
            out += QStringLiteral("%1[%2]\n").arg(out.isEmpty() ? "" : "\n", k.section);
        }
        out += QStringLiteral("%1 = %2\n").arg(k.key, k.get(c));
    }
    return out;
}

namespace {

QStringList keysOf(const QString& section)
{
    QStringList keys;
    for (const Setting& s : settings())
        if (s.section && section == QLatin1String(s.section))
            keys << QLatin1String(s.key);
    return keys;
}

QString didYouMean(const QString& word, const QStringList& candidates)
{
    const QString m = closestMatch(word, candidates);
    return m.isEmpty() ? QString() : QStringLiteral(" (did you mean '%1'?)").arg(m);
}

// One line of the file; section is the current section (updated by headers).
void parseLine(QString line, QString& section, ConfigParse& out, const QString& where)
{
    auto errorHere = [&](const QString& what) { out.errors << where + ": " + what; };
    line = line.trimmed();
    if (line.isEmpty() || line.startsWith('#') || line.startsWith(';'))
        return;
    if (line.startsWith('[')) {
        if (!line.endsWith(']')) {
            errorHere(QStringLiteral("malformed section header '%1'").arg(line));
            section = QStringLiteral("?");
            return;
        }
        section = line.mid(1, line.size() - 2).trimmed();
        if (section != "daemon" && section != "sync")
            errorHere(QStringLiteral("unknown section [%1]%2")
                          .arg(section, didYouMean(section, {"daemon", "sync"})));
        return;
    }
    const qsizetype eq = line.indexOf('=');
    if (eq <= 0)
        return errorHere(QStringLiteral("expected 'key = value', got '%1'").arg(line));
    const QString key = line.left(eq).trimmed();
    QString value = line.mid(eq + 1).trimmed();
    if (const qsizetype hash = value.indexOf(" #"); hash >= 0)
        value = value.left(hash).trimmed();
    if (section.isEmpty())
        return errorHere(QStringLiteral("key '%1' outside of a section").arg(key));
    if (section != "daemon" && section != "sync")
        return; // reported with the section
    const Setting* s = findSetting(qPrintable(section), key);
    if (!s) {
        QString hint = didYouMean(key, keysOf(section));
        const QString other = section == "daemon" ? "sync" : "daemon";
        if (hint.isEmpty() && findSetting(qPrintable(other), key))
            hint = QStringLiteral(" (it belongs in [%1])").arg(other);
        return errorHere(QStringLiteral("unknown key '%1' in [%2]%3").arg(key, section, hint));
    }
    if (auto err = applySetting(*s, out.config, value))
        errorHere(*err);
}

} // namespace

ConfigParse parseConfig(const QString& text, const QString& fileName, DaemonConfig base)
{
    ConfigParse out{std::move(base), {}};
    QString section;
    const QStringList lines = text.split('\n');
    for (int i = 0; i < lines.size(); ++i)
        parseLine(lines[i], section, out, QStringLiteral("%1:%2").arg(fileName).arg(i + 1));
    return out;
}

namespace {

ConfigParse loadOne(const QString& path, DaemonConfig base)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) {
        ConfigParse out{std::move(base), {}};
        out.errors << QStringLiteral("%1: cannot read (%2)").arg(path, f.errorString());
        return out;
    }
    const QByteArray data = f.read(1024 * 1024);
    return parseConfig(QString::fromUtf8(data), path, std::move(base));
}

ConfigParse withDropIns(ConfigParse out, const QString& path)
{
    const QDir dir(path + ".d");
    // Every *.conf there is read or named as an error -- one the daemon
    // cannot read (its mode, a dangling symlink) is never skipped silently.
    if (dir.exists() && !QFileInfo(dir.path()).isReadable())
        out.errors << QStringLiteral("%1: cannot list its drop-ins").arg(dir.path());
    const QStringList names =
        dir.entryList({"*.conf"}, QDir::Files | QDir::System | QDir::Hidden, QDir::Name);
    for (const QString& name : names) {
        ConfigParse next = loadOne(dir.filePath(name), out.config);
        out.config = next.config;
        out.errors += next.errors;
    }
    return out;
}

} // namespace

ConfigParse loadConfig(const QString& path)
{
    return withDropIns(loadOne(path, {}), path);
}

ConfigParse loadEffectiveConfig(const QString& explicitPath)
{
    if (!explicitPath.isEmpty())
        return loadConfig(explicitPath);
    const QString path = QString::fromLatin1(kDefaultConfigPath);
    if (QFile::exists(path))
        return loadConfig(path);
    return withDropIns({}, path);
}

} // namespace clocksync
