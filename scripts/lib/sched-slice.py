#!/usr/bin/env python3
"""Sets the nice level and the EEVDF time slice of threads: sched-slice.py NICE SLICE_US /proc/PID/task/TID...

SLICE_US 0 leaves the kernel's default slice. Linux 6.12 and later honour a custom slice for normal
threads (sched_setattr's sched_runtime, clamped to 0.1-100 ms); older kernels keep only the nice
level. Threads that are gone by the time they are reached are passed over. Used by
scripts/bench-audit.sh to keep the benchmark's control plane from delaying the load generator."""
import ctypes
import os
import struct
import sys

SYS_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}


def main() -> int:
    nice, slice_us, tasks = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    number = SYS_SCHED_SETATTR.get(os.uname().machine)
    if number is None:
        sys.exit(f"sched-slice.py: no sched_setattr number known for {os.uname().machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    # struct sched_attr (SCHED_ATTR_SIZE_VER0): size, policy (SCHED_OTHER), flags, nice, priority,
    # runtime (the slice), deadline, period.
    attr = ctypes.create_string_buffer(struct.pack("=IIQiIQQQ", 48, 0, 0, nice, 0, slice_us * 1000, 0, 0))
    for task in tasks:
        tid = int(os.path.basename(task))
        if libc.syscall(number, tid, attr, 0) != 0:
            error = ctypes.get_errno()
            if error != 3:  # ESRCH: the thread ended
                sys.exit(f"sched-slice.py: sched_setattr({tid}): {os.strerror(error)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
