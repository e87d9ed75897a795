//! Another process's CPU time, to the nanosecond: its CPU-time clock
//! (`clock_getcpuclockid`), all threads, including the slice it is running
//! now. Lets a probe attribute the CPU a forwarder spent to the datagrams it
//! forwarded, one at a time (the tick counts of /proc/PID/stat are 10 ms).

use std::io::Error;

pub struct CpuClock {
    id: libc::clockid_t,
}

impl CpuClock {
    /// The CPU-time clock of process `pid`.
    pub fn of(pid: u32) -> anyhow::Result<CpuClock> {
        let pid = libc::pid_t::try_from(pid)?;
        let mut id: libc::clockid_t = 0;
        // SAFETY: `id` is a valid clockid_t to fill.
        let rc = unsafe { libc::clock_getcpuclockid(pid, &mut id) };
        anyhow::ensure!(
            rc == 0,
            "clock_getcpuclockid({pid}): {}",
            Error::from_raw_os_error(rc)
        );
        let clock = CpuClock { id };
        clock.now_ns()?;
        Ok(clock)
    }

    /// CPU nanoseconds the process has used so far.
    pub fn now_ns(&self) -> anyhow::Result<u64> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to fill.
        let rc = unsafe { libc::clock_gettime(self.id, &mut ts) };
        anyhow::ensure!(rc == 0, "clock_gettime: {}", Error::last_os_error());
        Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }
}
