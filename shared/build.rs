//! `sqlx::migrate!` embeds the migrations at compile time, and cargo does not know the macro
//! read that directory: without this, a new migration file leaves the binary with the old schema.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
