// SPDX-License-Identifier: Apache-2.0
// Reporter: log lines, journald fields, metrics.
#include "reporter.h"

#include "trigger.h"

#include <QFile>
#include <QLoggingCategory>

#include <sys/uio.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-journal.h>
#endif

Q_LOGGING_CATEGORY(lcSync, "clocksync.sync")
Q_LOGGING_CATEGORY(lcReport, "clocksync.daemon")

namespace clocksync {

void Reporter::record(const SyncResult& r)
{
    // A standing reason to skip (no agent channel, an absolute clock) is said
    // once; a policy choice every time; so is a config problem, at warning
    // priority -- the operator has something to fix.
    const bool standing =
        r.outcome == Outcome::Skipped && r.note.rfind("policy:", 0) != 0 && !r.configProblem;
    const bool repeatSkip = standing && m_skipNote[r.uuid] == r.note;
    m_skipNote[r.uuid] = r.outcome == Outcome::Skipped ? r.note : std::string();
    if (!repeatSkip)
        logSyncResult(r);
    m_metrics.record(r);
}

void Reporter::forget(const std::string& uuid, const std::string& name)
{
    m_skipNote.erase(uuid);
    m_metrics.forget(name);
}

void Reporter::update(bool connected, int reconnects, int tracked, int pending)
{
    m_metrics.setConnected(connected);
    m_metrics.setReconnects(reconnects);
    m_metrics.setGuests(tracked, pending);
    if (m_textfile.isEmpty())
        return;
    if (const QString err = m_metrics.writeTextfile(m_textfile, m_clock.realtimeNs());
        !err.isEmpty())
        qCWarning(lcReport).noquote() << "cannot write" << m_textfile << ":" << err;
}

void Reporter::setTextfile(const QString& path)
{
    if (path != m_textfile)
        removeTextfile();
    m_textfile = path;
}

void Reporter::removeTextfile() const
{
    if (!m_textfile.isEmpty() && QFile::exists(m_textfile) && !QFile::remove(m_textfile))
        qCWarning(lcReport).noquote() << "cannot remove" << m_textfile;
}

std::vector<std::string> journalFields(const SyncResult& r)
{
    std::vector<std::string> f = {
        "MESSAGE=" + r.domain + ": " + describe(r),
        "PRIORITY=" + std::to_string(r.ok() && !r.configProblem ? 6 : 4),
        "SYSLOG_IDENTIFIER=virt-clocksyncd",
        "DOMAIN=" + r.domain,
        "DOMAIN_UUID=" + r.uuid,
        "TRIGGER=" + std::string(triggerName(r.trigger)),
        "OUTCOME=" + std::string(outcomeName(r.outcome)),
        "ATTEMPTS=" + std::to_string(r.attempts),
        "LATENCY_NS=" + std::to_string(r.latencyNs),
    };
    if (r.coarseLatencyNs > 0)
        f.push_back("COARSE_LATENCY_NS=" + std::to_string(r.coarseLatencyNs));
    if (r.before)
        f.push_back("OFFSET_BEFORE_NS=" + std::to_string(r.before->offsetNs));
    if (r.after) {
        f.push_back("OFFSET_AFTER_NS=" + std::to_string(r.after->offsetNs));
        f.push_back("UNCERTAINTY_AFTER_NS=" + std::to_string(r.after->uncertaintyNs));
    }
    if (r.error)
        f.push_back("ERROR=" + r.error->message);
    return f;
}

void logSyncResult(const SyncResult& r)
{
    // The drift watch is quiet while guests are fine: one line when one is
    // not -- a config problem included (Reporter::record says it once).
    if (r.trigger == Trigger::DriftWatch &&
        (r.outcome == Outcome::InSync || r.outcome == Outcome::Cancelled ||
         (r.outcome == Outcome::Skipped && !r.configProblem)))
        return;
#ifdef HAVE_LIBSYSTEMD
    // Under journald (systemd sets JOURNAL_STREAM for the service's stderr):
    // the same line, with fields to filter on (journalctl DOMAIN=web1).
    if (qEnvironmentVariableIsSet("JOURNAL_STREAM")) {
        const std::vector<std::string> fields = journalFields(r);
        std::vector<iovec> iov;
        for (const std::string& field : fields)
            iov.push_back({const_cast<char*>(field.data()), field.size()});
        if (sd_journal_sendv(iov.data(), int(iov.size())) >= 0)
            return;
    }
#endif
    const QString line = QString::fromStdString(r.domain + ": " + describe(r));
    if (r.ok() && !r.configProblem)
        qCInfo(lcSync).noquote() << line;
    else
        qCWarning(lcSync).noquote() << line;
}

} // namespace clocksync
