//! AFL++ target: see mosh_mux_fuzz::control.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        mosh_mux_fuzz::control(data);
    });
}
