"""Run one command and print its wall time, CPU time, peak RSS and exit status as JSON.

Usage: python -I -S child.py STDOUT_FILE STDERR_FILE COMMAND...

Why a wrapper: Linux carries a process's peak RSS over fork and exec, so a command spawned
straight from the driver (which holds boto3 and moto) would report the driver's peak. This
process stays small (no site, only builtin modules), so the floor it passes on is a few MiB,
below any Python program's own. Its own start-up is outside the timed span.
"""

import os
import sys
import time


def main() -> None:
    out_path, err_path, *command = sys.argv[1:]
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, out, 1),
        (os.POSIX_SPAWN_DUP2, err, 2),
    ]
    start = time.perf_counter()
    pid = os.posix_spawnp(command[0], command, dict(os.environ), file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    sys.stdout.write(
        "{"
        f'"wall": {wall!r}, "cpu": {usage.ru_utime + usage.ru_stime!r}, '
        f'"maxrss_kib": {usage.ru_maxrss}, "exit": {os.waitstatus_to_exitcode(status)}'
        "}\n"
    )


main()
