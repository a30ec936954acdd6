// SPDX-License-Identifier: Apache-2.0
// The CLI's command table against what is derived from it or must agree with
// it: parsing (unknown options, argument counts), help, the man page and the
// bash completion.
#include "cli.h"
#include "common.h"
#include "fakeqgaserver.h"
#include "settings.h"

#include <QFile>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <unistd.h>

using namespace clocksync::cli;

namespace {

QString readSource(const char* path)
{
    QFile f(QStringLiteral(CLOCKSYNC_SOURCE_DIR "/") + path);
    return f.open(QIODevice::ReadOnly) ? QString::fromUtf8(f.readAll()) : QString();
}

// What a command prints on stdout (and its exit code).
QString captureStdout(const QStringList& args, int* code)
{
    std::fflush(stdout);
    std::FILE* tmp = std::tmpfile();
    const int saved = ::dup(1);
    ::dup2(::fileno(tmp), 1);
    *code = run(args);
    std::fflush(stdout);
    ::dup2(saved, 1);
    ::close(saved);
    std::rewind(tmp);
    QByteArray out;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, tmp)) > 0;)
        out.append(buf, qsizetype(n));
    std::fclose(tmp);
    return QString::fromUtf8(out);
}

QStringList longNames(const OptionSpec& o)
{
    QStringList out;
    for (const QString& n : QString::fromLatin1(o.names).split(','))
        if (n.size() > 1)
            out << "--" + n;
    return out;
}

// The words of `NAME="..."` or `NAME) opts="..."` in the completion script.
QStringList words(const QString& script, const QString& pattern)
{
    const QRegularExpressionMatch m = QRegularExpression(pattern).match(script);
    return m.hasMatch() ? m.captured(1).split(' ', Qt::SkipEmptyParts) : QStringList{};
}

} // namespace

class TestCli : public QObject
{
    Q_OBJECT
private slots:
    // status's exit code per guest: a sync cancelled by a pause is no
    // problem (the guest is synced when it runs again); a failure, a drift
    // or a config problem is.
    void statusExitCodes_data()
    {
        using clocksync::Outcome;
        QTest::addColumn<int>("outcome");
        QTest::addColumn<bool>("configProblem");
        QTest::addColumn<int>("code");
        QTest::newRow("in-sync") << int(Outcome::InSync) << false << int(ExitOk);
        QTest::newRow("synced") << int(Outcome::Synced) << false << int(ExitOk);
        QTest::newRow("approximate") << int(Outcome::Approximate) << false << int(ExitOk);
        QTest::newRow("skipped by policy") << int(Outcome::Skipped) << false << int(ExitOk);
        QTest::newRow("cancelled by a pause") << int(Outcome::Cancelled) << false << int(ExitOk);
        QTest::newRow("failed") << int(Outcome::Failed) << false << int(ExitOutOfTolerance);
        QTest::newRow("drifted") << int(Outcome::Drifted) << false << int(ExitOutOfTolerance);
        QTest::newRow("policy typo") << int(Outcome::Skipped) << true << int(ExitFailure);
    }
    void statusExitCodes()
    {
        QFETCH(int, outcome);
        QFETCH(bool, configProblem);
        QFETCH(int, code);
        clocksync::SyncResult r;
        r.outcome = clocksync::Outcome(outcome);
        r.configProblem = configProblem;
        QCOMPARE(statusExitFor(r), code);
    }

    // `offset` of a tick-clock guest (Windows: 15.6 ms) claims no better
    // than its tick, as the daemon's results do -- not half its round trip
    // (a few microseconds here): before, it printed +/-10 us for a reading
    // that may be 15.6 ms old.
    void offsetOfATickClockClaimsItsTick()
    {
        QTemporaryDir dir;
        const std::string path = (dir.path() + "/qga.sock").toStdString();
        FakeQgaServer qga(path);
        constexpr long long kTick = 15'625'000;
        qga.setScript([](const std::string& cmd, const std::string& line) {
            if (cmd != "guest-get-time")
                return FakeQgaServer::defaultAction(cmd, line);
            timespec ts{};
            clock_gettime(CLOCK_REALTIME, &ts);
            long long ns = static_cast<long long>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
            ns -= ns % kTick;
            return FakeQgaServer::Action{FakeQgaServer::Action::Reply,
                                         "{\"return\": " + std::to_string(ns) + "}\n"};
        });
        QVERIFY(qga.start());
        int code = -1;
        const QString out = captureStdout(
            {"offset", "vm", "--socket", QString::fromStdString(path), "--json"}, &code);
        const nlohmann::json j = nlohmann::json::parse(out.toStdString(), nullptr, false);
        QVERIFY2(j.is_object(), qPrintable(out));
        // The tick it saw: the whole 15.6 ms if a step fell among its samples,
        // else at least the millisecond a clock that stood still is given
        // (200 samples of this fast fake can fit inside one tick). Half the
        // round trip is microseconds here.
        QVERIFY2(j.value("rtt_ns", int64_t(0)) < 500'000, qPrintable(out));
        QVERIFY2(j.value("uncertainty_ns", int64_t(0)) >= 1'000'000, qPrintable(out));
        // (Its exit code is not asserted: within tolerance "to its tick" needs
        // the whole tick seen, which 200 samples this fast may not.)
        QVERIFY(code == int(ExitOk) || code == int(ExitOutOfTolerance));
    }

    void everyCommandHasHelpAndRejectsUnknownOptions()
    {
        QVERIFY(commands().size() >= 7);
        for (const Command& c : commands()) {
            QCOMPARE(run({"help", c.name}), int(ExitOk));
            QCOMPARE(run({c.name, "--help"}), int(ExitOk));
            QCOMPARE(run({c.name, "--no-such-option"}), int(ExitUsage));
            if (c.maxArgs >= 0) // one argument too many
                QCOMPARE(run(QStringList{c.name} + QStringList(c.maxArgs + 1, "x")),
                         int(ExitUsage));
            if (c.minArgs > 0)
                QCOMPARE(run({c.name}), int(ExitUsage));
        }
        QCOMPARE(run({"frobnicate"}), int(ExitUsage));
        QCOMPARE(run({"help", "frobnicate"}), int(ExitUsage));
        QCOMPARE(run({}), int(ExitUsage));
        QCOMPARE(run({"--help"}), int(ExitOk));
        // A value option without its value is a usage error, not a crash.
        QCOMPARE(run({"offset", "vm", "--samples"}), int(ExitUsage));
        QCOMPARE(run({"offset", "vm", "--samples=0"}), int(ExitUsage));
    }

    void manPageDocumentsTheTable()
    {
        const QString man = readSource("conf/man/virt-clocksync.1").replace("\\-", "-");
        QVERIFY(!man.isEmpty());
        for (const Command& c : commands()) {
            QVERIFY2(man.contains(QStringLiteral(".B %1").arg(c.name)), c.name);
            for (const OptionSpec& o : c.options)
                for (const QString& n : longNames(o))
                    QVERIFY2(man.contains(n), qPrintable(c.name + (" " + n)));
        }
        for (const OptionSpec& o : globalOptions())
            for (const QString& n : longNames(o))
                QVERIFY2(man.contains(n), qPrintable(n));
        // policy's keys: every per-domain row of the settings table.
        for (const clocksync::Setting& k : clocksync::settings())
            if (k.perDomain)
                QVERIFY2(man.contains(QLatin1String(k.key)), k.key);
    }

    void completionKnowsTheTable()
    {
        const QString bash = readSource("conf/virt-clocksync.bash-completion");
        QVERIFY(!bash.isEmpty());
        const QStringList cmds = words(bash, "cmds=\"([^\"]*)\"");
        const QStringList global = words(bash, "local global=\"([^\"]*)\"");
        for (const OptionSpec& o : globalOptions())
            for (const QString& n : longNames(o))
                QVERIFY2(global.contains(n), qPrintable(n));
        for (const Command& c : commands()) {
            QVERIFY2(cmds.contains(c.name), c.name);
            const QStringList opts = words(bash, QStringLiteral("\\n\\s*%1\\) opts=\"([^\"]*)\"")
                                                     .arg(QRegularExpression::escape(c.name)));
            for (const OptionSpec& o : c.options)
                for (const QString& n : longNames(o))
                    QVERIFY2(opts.contains(n), qPrintable(c.name + (" " + n)));
        }
    }

    // policy --set completes every per-domain key of the settings table (and
    // resync), every mode, and nothing else.
    void completionSetsEveryPolicyKey()
    {
        const QString bash = readSource("conf/virt-clocksync.bash-completion");
        QStringList offered = words(bash, "--set\\) COMPREPLY=\\(\\$\\(compgen -W \"([^\"]*)\"");
        QVERIFY(!offered.isEmpty());
        QStringList expected{"resync="};
        for (const clocksync::Setting& k : clocksync::settings())
            if (k.perDomain && QLatin1String(k.key) != QLatin1String("mode"))
                expected << QLatin1String(k.key) + "=";
        for (clocksync::SyncMode m : {clocksync::SyncMode::Host, clocksync::SyncMode::HostUtc,
                                      clocksync::SyncMode::Rtc, clocksync::SyncMode::Off})
            expected << QStringLiteral("mode=%1").arg(clocksync::syncModeName(m));
        offered.sort();
        expected.sort();
        QCOMPARE(offered, expected);
    }

    // Domain names come from the libvirt the command will use: -c's URI
    // (a stand-in virsh on PATH records how it was asked), virsh's default
    // without one.
    void completionListsDomainsOfTheGivenUri()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QFile virsh(dir.filePath("virsh"));
        QVERIFY(virsh.open(QIODevice::WriteOnly));
        virsh.write("#!/bin/sh\necho \"$*\" >> \"$(dirname \"$0\")/calls\"\n"
                    "[ \"$1\" = -c ] && echo vm-on-${2##*/} || echo vm-default\n");
        virsh.close();
        virsh.setPermissions(virsh.permissions() | QFileDevice::ExeOwner);
        const auto complete = [&](const QString& line) {
            QProcess bash;
            bash.setProcessEnvironment([&] {
                QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
                e.insert("PATH", dir.path() + ":" + e.value("PATH"));
                return e;
            }());
            const QString script =
                QStringLiteral(". '%1'; COMP_WORDS=(%2); COMP_CWORD=$((${#COMP_WORDS[@]} - 1));"
                               " _virt_clocksync; echo \"${COMPREPLY[*]}\"")
                    .arg(
                        QStringLiteral(CLOCKSYNC_SOURCE_DIR "/conf/virt-clocksync.bash-completion"),
                        line);
            bash.start("bash", {"-c", script});
            bash.waitForFinished(10000);
            return QString::fromUtf8(bash.readAllStandardOutput()).trimmed();
        };
        QCOMPARE(complete("virt-clocksync -c test:///x sync ''"), QStringLiteral("vm-on-x"));
        QCOMPARE(complete("virt-clocksync --uri test:///y status 'vm'"), QStringLiteral("vm-on-y"));
        QCOMPARE(complete("virt-clocksync policy ''"), QStringLiteral("vm-default"));
        QFile calls(dir.filePath("calls"));
        QVERIFY(calls.open(QIODevice::ReadOnly));
        QCOMPARE(
            QString::fromUtf8(calls.readAll()),
            QStringLiteral("-c test:///x list --name\n-c test:///y list --name\nlist --name\n"));
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"
