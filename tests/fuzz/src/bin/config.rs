//! AFL++ target: see mosh_mux_fuzz::config.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        mosh_mux_fuzz::config(data);
    });
}
