//! AFL++ target: see mosh_mux_fuzz::router::run.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        mosh_mux_fuzz::router::run(data);
    });
}
