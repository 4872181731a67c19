//! The shared library's SONAME names its ABI version: the major version, and before 1.0 the
//! minor too (libalmost_raft_ffi.so.0.5), because before 1.0 a minor version may break the C
//! ABI (cargo-c names 0.x libraries the same way). A program linked against one ABI never
//! loads another.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,-soname,libalmost_raft_ffi.so.{}",
            abi_version()
        );
    }
}

fn abi_version() -> String {
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    match major {
        "0" => format!("0.{}", env!("CARGO_PKG_VERSION_MINOR")),
        _ => major.to_owned(),
    }
}
