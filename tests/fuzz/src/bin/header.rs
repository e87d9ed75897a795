//! AFL++ target: see mosh_mux_fuzz::header.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        mosh_mux_fuzz::header(data);
    });
}
