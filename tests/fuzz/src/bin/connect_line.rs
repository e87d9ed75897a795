//! AFL++ target: see mosh_mux_fuzz::connect_line.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        mosh_mux_fuzz::connect_line(data);
    });
}
