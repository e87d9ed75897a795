//! AFL++ target: see mosh_mux_fuzz::scan.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        mosh_mux_fuzz::scan(data);
    });
}
