// SPDX-License-Identifier: Apache-2.0
// Config file and domain-metadata policy parsers: good input, and every bad
// input reported with file:line while the default is kept.
#include "config.h"
#include "policy.h"

#include <QFile>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

using namespace clocksync;

class TestConfig : public QObject
{
    Q_OBJECT
private slots:
    void fullConfig()
    {
        const QString text = "# comment\n"
                             "[daemon]\n"
                             "uri = qemu:///session\n"
                             "transport = libvirt-raw\n"
                             "concurrency = 8   # inline comment\n"
                             "agent-wait-seconds = 20\n"
                             "agent-timeout-seconds = 3\n"
                             "\n"
                             "[sync]\n"
                             "samples = 9\n"
                             "tolerance-us = 2000\n"
                             "target-us = 30\n"
                             "attempts = 5\n"
                             "sync-on-boot = yes\n"
                             "mode = rtc\n";
        ConfigParse p = parseConfig(text, "t.conf");
        QVERIFY2(p.errors.isEmpty(), qPrintable(p.errors.join('\n')));
        const DaemonConfig& c = p.config;
        QCOMPARE(c.uri, QString("qemu:///session"));
        QCOMPARE(c.transport, Transport::LibvirtRaw);
        QCOMPARE(c.concurrency, 8);
        QCOMPARE(c.agentWaitSeconds, 20);
        QCOMPARE(c.agentTimeoutSeconds, 3);
        QCOMPARE(c.policy.samples, 9);
        QCOMPARE(c.policy.toleranceNs, 2'000'000);
        QCOMPARE(c.policy.targetNs, 30'000);
        QCOMPARE(c.policy.attempts, 5);
        QVERIFY(c.policy.syncOnBoot);
        QCOMPARE(c.policy.mode, SyncMode::Rtc);
    }

    void errorsNameFileAndLineAndKeepDefaults()
    {
        const QString text = "[daemon]\n"
                             "concurency = 8\n"             // 2: typo
                             "concurrency = many\n"         // 3: bad value
                             "concurrency = 0\n"            // 4: out of range
                             "transport = carrier-pigeon\n" // 5
                             "just some words\n"            // 6
                             "[nonsense]\n"                 // 7
                             "x = 1\n"                      // 8: ignored with the section
                             "[sync\n"                      // 9
                             "[sync]\n"
                             "target-us = -5\n"        // 11
                             "sync-on-boot = maybe\n"; // 12
        ConfigParse p = parseConfig(text, "/etc/x.conf");
        const DaemonConfig defaults;
        QCOMPARE(p.config.concurrency, defaults.concurrency);
        QCOMPARE(p.config.transport, defaults.transport);
        QCOMPARE(p.config.policy.targetNs, defaults.policy.targetNs);
        QCOMPARE(p.config.policy.syncOnBoot, defaults.policy.syncOnBoot);
        const QStringList expectedPrefixes = {"/etc/x.conf:2: unknown key 'concurency'",
                                              "/etc/x.conf:3: invalid value 'many'",
                                              "/etc/x.conf:4: invalid value '0'",
                                              "/etc/x.conf:5: invalid value 'carrier-pigeon'",
                                              "/etc/x.conf:6: expected 'key = value'",
                                              "/etc/x.conf:7: unknown section [nonsense]",
                                              "/etc/x.conf:9: malformed section header",
                                              "/etc/x.conf:11: invalid value '-5'",
                                              "/etc/x.conf:12: invalid value 'maybe'"};
        QCOMPARE(p.errors.size(), expectedPrefixes.size());
        for (int i = 0; i < expectedPrefixes.size(); ++i)
            QVERIFY2(p.errors[i].startsWith(expectedPrefixes[i]), qPrintable(p.errors[i]));
        QVERIFY(!p.ok());
        QVERIFY2(p.errors[0].endsWith("(did you mean 'concurrency'?)"), qPrintable(p.errors[0]));
    }

    // The typos an operator makes are errors that say what was meant.
    void typosSayWhatWasMeant()
    {
        const ConfigParse p = parseConfig("[sync]\nmode = of\nenabeld = no\nenabled = nope\n"
                                          "[daemon]\ntolerance-us = 5\n[snyc]\n",
                                          "f.conf");
        QCOMPARE(p.errors.size(), 5);
        QVERIFY2(p.errors[0].startsWith("f.conf:2: invalid value 'of' for 'mode'"),
                 qPrintable(p.errors[0]));
        QVERIFY2(p.errors[1].contains("unknown key 'enabeld' in [sync] (did you mean 'enabled'?)"),
                 qPrintable(p.errors[1]));
        QVERIFY2(p.errors[2].startsWith("f.conf:4: invalid value 'nope' for 'enabled'"),
                 qPrintable(p.errors[2]));
        QVERIFY2(p.errors[3].contains("'tolerance-us' in [daemon] (it belongs in [sync])"),
                 qPrintable(p.errors[3]));
        QVERIFY2(p.errors[4].contains("unknown section [snyc] (did you mean 'sync'?)"),
                 qPrintable(p.errors[4]));
        QCOMPARE(closestMatch("xyzzy", {"mode", "enabled"}), QString());
        QCOMPARE(closestMatch("attempt", {"attempts", "samples"}), QString("attempts"));
    }

    void unreadableFileKeepsDefaults()
    {
        ConfigParse p = loadConfig("/nonexistent/virt-clocksyncd.conf");
        QCOMPARE(p.errors.size(), 1);
        QVERIFY(p.errors[0].contains("cannot read"));
        QCOMPARE(p.config.uri, DaemonConfig{}.uri);
    }

    void shippedConfigParsesClean()
    {
        ConfigParse p =
            loadConfig(QStringLiteral(CLOCKSYNC_SOURCE_DIR "/conf/virt-clocksyncd.conf"));
        QVERIFY2(p.errors.isEmpty(), qPrintable(p.errors.join('\n')));
        // The shipped file documents the defaults; it must not change them.
        const DaemonConfig d;
        QCOMPARE(p.config.concurrency, d.concurrency);
        QCOMPARE(p.config.policy.targetNs, d.policy.targetNs);
        QCOMPARE(p.config.policy.toleranceNs, d.policy.toleranceNs);
        QCOMPARE(p.config.policy.enabled, d.policy.enabled);
        QCOMPARE(p.config.policy.watchIntervalSeconds, d.policy.watchIntervalSeconds);
        QCOMPARE(p.config.controlSocket, d.controlSocket);
    }

    // The shipped file only documents: every key commented out, showing the
    // default (an example where the default is empty); uncommented, the
    // shown values change nothing.
    void shippedConfigShowsTheDefaultsCommentedOut()
    {
        QFile f(QStringLiteral(CLOCKSYNC_SOURCE_DIR "/conf/virt-clocksyncd.conf"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QString shown;
        QByteArray section;
        const DaemonConfig defaults;
        for (const QString& line : QString::fromUtf8(f.readAll()).split('\n')) {
            const QRegularExpressionMatch key =
                QRegularExpression(QStringLiteral("^#?([a-z-]+) = ")).match(line);
            if (line.startsWith('[')) {
                shown += line + '\n';
                section = line.mid(1, line.indexOf(']') - 1).toUtf8();
            }
            if (!key.hasMatch())
                continue;
            QVERIFY2(line.startsWith('#'), qPrintable("not commented out: " + line));
            const Setting* s = findSetting(section.constData(), key.captured(1));
            QVERIFY2(s, qPrintable(line));
            if (!s->get(defaults).isEmpty())
                shown += line.mid(1) + '\n';
        }
        const ConfigParse p = parseConfig(shown, "shown");
        QVERIFY2(p.errors.isEmpty(), qPrintable(p.errors.join('\n')));
        QCOMPARE(formatConfig(p.config), formatConfig(defaults));
    }

    // conf(5), virt-clocksyncd(8) and docs/operating.md name exactly the keys
    // a reload does not apply.
    void restartOnlyKeysAgreeWithTheDocs()
    {
        const QRegularExpression sentence(QStringLiteral("keys (uri[^.]*) need a restart"));
        for (const char* doc : {"/conf/man/virt-clocksyncd.conf.5", "/conf/man/virt-clocksyncd.8",
                                "/docs/operating.md"}) {
            QFile f(QStringLiteral(CLOCKSYNC_SOURCE_DIR) + QLatin1String(doc));
            QVERIFY(f.open(QIODevice::ReadOnly));
            const QString text = QString::fromUtf8(f.readAll()).simplified();
            const QRegularExpressionMatch m = sentence.match(text);
            QVERIFY2(m.hasMatch(), doc);
            QStringList named = m.captured(1).split(QRegularExpression(", | and "));
            QStringList expected;
            for (const Setting& k : settings())
                if (k.section && needsRestart(k.key))
                    expected << QLatin1String(k.key);
            named.sort();
            expected.sort();
            QCOMPARE(named, expected);
        }
    }

    // Every key the parser knows is in the shipped file, in its section.
    void shippedConfigDocumentsEveryKey()
    {
        QFile f(QStringLiteral(CLOCKSYNC_SOURCE_DIR "/conf/virt-clocksyncd.conf"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QString text = QString::fromUtf8(f.readAll());
        QVERIFY(settings().size() >= 17);
        for (const Setting& k : settings()) {
            if (!k.section)
                continue; // domain metadata only
            const QRegularExpression line(
                QStringLiteral("^#?%1 = ").arg(QRegularExpression::escape(k.key)),
                QRegularExpression::MultilineOption);
            const QRegularExpressionMatch m = line.match(text);
            QVERIFY2(m.hasMatch(), k.key);
            const qsizetype header = text.lastIndexOf('[', m.capturedStart());
            QVERIFY2(text.mid(header).startsWith(QStringLiteral("[%1]").arg(k.section)), k.key);
        }
    }

    // What --check-config prints: every key, read back to the same settings.
    void formattedConfigRoundTrips()
    {
        ConfigParse in =
            parseConfig("[daemon]\nuri = qemu+ssh://h/system\ntransport = libvirt-raw\n"
                        "concurrency = 9\ncontrol-group = kvm\n"
                        "metrics-textfile = /tmp/m.prom\n[sync]\nsamples = 7\n"
                        "enabled = no\nmode = rtc\ntolerance-us = 5\ntarget-us = 3\n"
                        "attempts = 2\nsync-on-boot = yes\nwatch-interval = 60\n"
                        "watch-correct = yes\n",
                        "in");
        QVERIFY2(in.errors.isEmpty(), qPrintable(in.errors.join('\n')));
        const QString text = formatConfig(in.config);
        for (const Setting& k : settings()) {
            if (!k.section)
                continue;
            QVERIFY2(!k.get(in.config).isNull(), k.key);
            QVERIFY2(text.contains(QStringLiteral("\n%1 = ").arg(k.key)), k.key);
        }
        const ConfigParse out = parseConfig(text, "out");
        QVERIFY2(out.errors.isEmpty(), qPrintable(out.errors.join('\n')));
        QCOMPARE(formatConfig(out.config), text);
        QCOMPARE(out.config.transport, Transport::LibvirtRaw);
        QCOMPARE(out.config.policy.mode, SyncMode::Rtc);
        QCOMPARE(out.config.policy.watchIntervalSeconds, 60);
        QCOMPARE(out.config.metricsTextfile, QStringLiteral("/tmp/m.prom"));
        // Defaults too (empty strings stay empty).
        QCOMPARE(formatConfig(parseConfig(formatConfig({}), "d").config), formatConfig({}));
    }

    // ... and every listed key reaches its setter (a bad value is "invalid",
    // never "unknown"); a per-domain-only key is unknown in [sync].
    void everyListedKeyIsParsed()
    {
        for (const Setting& k : settings()) {
            if (!k.section)
                continue;
            const ConfigParse p =
                parseConfig(QStringLiteral("[%1]\n%2 = \x7f\n").arg(k.section, k.key), "t");
            for (const QString& w : p.errors) {
                QVERIFY2(!w.contains("unknown key"), qPrintable(w));
                QVERIFY2(!w.contains("no setter"), qPrintable(w));
            }
        }
        const ConfigParse p = parseConfig("[sync]\nguest-exec = yes\nresync = 1\n", "t");
        QCOMPARE(p.errors.size(), 2);
        QVERIFY(p.errors[0].contains("unknown key 'guest-exec' in [sync]"));
        QCOMPARE(p.config.policy.allowGuestExec, false);
    }

    // virt-clocksyncd.conf(5) documents every key of the table.
    void manPageDocumentsEveryKey()
    {
        QFile f(QStringLiteral(CLOCKSYNC_SOURCE_DIR "/conf/man/virt-clocksyncd.conf.5"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QString man = QString::fromUtf8(f.readAll());
        for (const Setting& k : settings())
            QVERIFY2(man.contains(QStringLiteral("\n.B %1\n").arg(k.key)), k.key);
        QVERIFY(man.contains("\n.B resync\n"));
    }

    // Drop-ins: FILE.d/*.conf in name order, each on top of the last; other
    // files there are not read; a drop-in's problem names its own file.
    void dropInsOverrideInNameOrder()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        auto write = [&](const QString& name, const QByteArray& text) {
            QFile f(dir.filePath(name));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(text);
        };
        QVERIFY(QDir(dir.path()).mkpath("main.conf.d"));
        write("main.conf", "[sync]\ntarget-us = 20\nattempts = 3\n[daemon]\nconcurrency = 2\n");
        write("main.conf.d/20-later.conf", "[sync]\nattempts = 7\n");
        write("main.conf.d/10-first.conf", "[sync]\nattempts = 6\ntolerance-us = 500\nbogus = 1\n");
        write("main.conf.d/30-ignored.conf.disabled", "[sync]\nattempts = 1\n");
        const ConfigParse p = loadConfig(dir.filePath("main.conf"));
        QCOMPARE(p.config.policy.targetNs, 20'000);     // main file
        QCOMPARE(p.config.policy.toleranceNs, 500'000); // 10-first
        QCOMPARE(p.config.policy.attempts, 7);          // 20-later wins over 10-first
        QCOMPARE(p.config.concurrency, 2);              // main, untouched by drop-ins
        QCOMPARE(p.errors.size(), 1);
        QVERIFY2(p.errors[0].contains("10-first.conf:4: unknown key 'bogus'"),
                 qPrintable(p.errors[0]));
    }

    // A drop-in that cannot be read -- here a symlink to a file that is gone
    // (its mode would do as well, but not for root) -- is an error naming it,
    // never skipped: the daemon would run without the operator's setting.
    void unreadableDropInIsAnError()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QVERIFY(QDir(dir.path()).mkpath("main.conf.d"));
        QFile main(dir.filePath("main.conf"));
        QVERIFY(main.open(QIODevice::WriteOnly));
        main.write("[sync]\nattempts = 3\n");
        main.close();
        QVERIFY(QFile::link(dir.filePath("gone.conf"), dir.filePath("main.conf.d/50-local.conf")));
        const ConfigParse p = loadConfig(dir.filePath("main.conf"));
        QCOMPARE(p.errors.size(), 1);
        QVERIFY2(p.errors[0].contains("50-local.conf: cannot read"), qPrintable(p.errors[0]));
    }

    void policyMetadata()
    {
        PolicyParse p = parsePolicyXml(
            "<policy xmlns=\"https://virt-clocksync.org/xmlns/policy/1\" mode=\"off\" "
            "tolerance-us=\"500\" "
            "target-us=\"20\" attempts=\"4\" sync-on-boot=\"yes\" enabled=\"yes\" resync=\"17\"/>");
        QVERIFY2(p.errors.isEmpty(), qPrintable(p.errors.join('\n')));
        QCOMPARE(p.policy.values.mode, SyncMode::Off);
        QCOMPARE(p.policy.values.toleranceNs, 500'000);
        QCOMPARE(p.policy.values.targetNs, 20'000);
        QCOMPARE(p.policy.values.attempts, 4);
        QVERIFY(p.policy.values.syncOnBoot);
        QCOMPARE(p.policy.resync, QString("17"));
        SyncPolicy merged = applyOverride(SyncPolicy{}, p.policy);
        QCOMPARE(merged.mode, SyncMode::Off);
        QCOMPARE(merged.samples, SyncPolicy{}.samples); // not overridable per domain: kept
    }

    void prefixedPolicyMetadata()
    {
        PolicyParse p = parsePolicyXml(
            "<clocksync:policy xmlns:clocksync=\"https://virt-clocksync.org/xmlns/policy/1\" "
            "mode=\"rtc\"/>");
        QVERIFY(p.errors.isEmpty());
        QCOMPARE(p.policy.values.mode, SyncMode::Rtc);
    }

    void malformedPolicyMetadata_data()
    {
        QTest::addColumn<QString>("xml");
        QTest::addColumn<int>("errors");
        QTest::newRow("not-xml") << "mode=off" << 1;
        QTest::newRow("unclosed") << "<policy mode=\"off\"" << 1;
        QTest::newRow("wrong-element") << "<clock mode=\"off\"/>" << 1;
        QTest::newRow("bad-mode") << "<policy mode=\"sometimes\" attempts=\"2\"/>" << 1;
        QTest::newRow("typo-mode") << "<policy mode=\"of\"/>" << 1;
        QTest::newRow("unknown-attr") << "<policy mode=\"off\" colour=\"blue\"/>" << 1;
        QTest::newRow("attempts-range") << "<policy attempts=\"99\"/>" << 1;
        QTest::newRow("empty") << "" << 1;
    }
    // Metadata that is not understood in full is not used in part: a guest
    // whose policy says mode=off beside a typo is not synced on the rest.
    void malformedPolicyMetadata()
    {
        QFETCH(QString, xml);
        QFETCH(int, errors);
        PolicyParse p = parsePolicyXml(xml);
        QCOMPARE(p.errors.size(), errors);
        QVERIFY(!p.ok());
        QVERIFY(p.policy.isEmpty());
    }

    // Every per-domain row: the same value given in the file and in a domain's
    // metadata yields the same effective setting, it differs from the default,
    // and it survives the metadata's XML round trip.
    void everyDomainKeyAgreesWithTheFile()
    {
        const QStringList candidates{"no", "yes", "rtc", "7", "60", "3"};
        int rows = 0;
        for (const Setting& s : settings()) {
            if (!s.perDomain)
                continue;
            ++rows;
            const DaemonConfig defaults;
            QString v;
            for (const QString& c : candidates) {
                DaemonConfig t;
                if (!applySetting(s, t, c) && s.get(t) != s.get(defaults)) {
                    v = c;
                    break;
                }
            }
            QVERIFY2(!v.isEmpty(), s.key);
            PolicyOverride o;
            QVERIFY2(!setPolicyKey(o, QLatin1String(s.key), v), s.key);
            const PolicyParse back = parsePolicyXml(policyToXml(o));
            QVERIFY2(back.errors.isEmpty(), s.key);
            QCOMPARE(back.policy.keys, QStringList{QLatin1String(s.key)});
            DaemonConfig viaMetadata;
            viaMetadata.policy = applyOverride(defaults.policy, back.policy);
            QCOMPARE(s.get(viaMetadata), v);
            if (s.section) {
                const ConfigParse file =
                    parseConfig(QStringLiteral("[%1]\n%2 = %3\n").arg(s.section, s.key, v), "t");
                QVERIFY2(file.errors.isEmpty(), qPrintable(file.errors.join('\n')));
                QCOMPARE(formatConfig(viaMetadata), formatConfig(file.config));
            }
            // Only that member moved.
            for (const Setting& other : settings())
                if (&other != &s)
                    QCOMPARE(other.get(viaMetadata), other.get(defaults));
        }
        QVERIFY(rows >= 11);
    }

    void policyRoundTrip()
    {
        PolicyOverride o;
        QVERIFY(!setPolicyKey(o, "mode", "rtc"));
        QVERIFY(!setPolicyKey(o, "tolerance-us", "250"));
        QVERIFY(!setPolicyKey(o, "resync", "now"));
        QVERIFY(setPolicyKey(o, "mode", "sideways"));
        QVERIFY(setPolicyKey(o, "nope", "1"));
        PolicyParse back = parsePolicyXml(policyToXml(o));
        QVERIFY(back.errors.isEmpty());
        QCOMPARE(back.policy.values.mode, SyncMode::Rtc);
        QCOMPARE(back.policy.values.toleranceNs, 250'000);
        QCOMPARE(back.policy.resync, QString("now"));
        QVERIFY(!back.policy.has("attempts"));
    }
};

QTEST_GUILESS_MAIN(TestConfig)
#include "tst_config.moc"
