// SPDX-License-Identifier: Apache-2.0
// CLOCKSYNC_SKIP(reason): a QSKIP that says why, except under CI=true, where
// nothing may be skipped silently: there it is a failure.
#pragma once

#include <QTest>
#include <QtGlobal>

#define CLOCKSYNC_SKIP(reason)                                                                     \
    do {                                                                                           \
        if (qEnvironmentVariable("CI") == QLatin1String("true"))                                   \
            QFAIL("cannot run under CI=true (a skip would hide it): " reason);                     \
        QSKIP(reason);                                                                             \
    } while (false)
