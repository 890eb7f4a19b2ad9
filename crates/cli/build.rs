//! With `--features tch`: bake LibTorch's library directory (reported by torch-sys's build
//! script as DEP_TCH_LIBTORCH_LIB) into the `didact` binary as an rpath, so it runs without
//! LD_LIBRARY_PATH, and record it for `didact doctor`. Without the feature this does nothing.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{lib}");
        println!("cargo:rustc-env=DIDACT_LIBTORCH_LIB={lib}");
    }
}
