//! In-process access to nftables through libnftables (`libnftables.so.1`),
//! loaded at run time with `libloading`, so that no child process is spawned
//! and the binary does not link against the library.
//!
//! A libnftables context is not thread-safe: [`Context`] keeps one behind a
//! mutex. The context's netlink socket belongs to the network namespace of
//! the thread that creates it (or runs its first command), so create and use
//! a [`Context`] from threads in the namespace you mean to configure.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::ptr::NonNull;
use std::sync::{Mutex, OnceLock};

use super::FwError;

/// The shared object berth loads.
pub const LIBRARY: &str = "libnftables.so.1";

/// `NFT_CTX_DEFAULT` from libnftables.h.
const NFT_CTX_DEFAULT: u32 = 0;
/// `NFT_CTX_OUTPUT_JSON` from libnftables.h.
const NFT_CTX_OUTPUT_JSON: c_uint = 1 << 4;

type NftCtx = *mut c_void;

/// The libnftables entry points berth uses. The `Library` is kept alive for
/// as long as the function pointers are.
pub(crate) struct Api {
    ctx_new: unsafe extern "C" fn(u32) -> NftCtx,
    ctx_free: unsafe extern "C" fn(NftCtx),
    buffer_output: unsafe extern "C" fn(NftCtx) -> c_int,
    buffer_error: unsafe extern "C" fn(NftCtx) -> c_int,
    get_output_buffer: unsafe extern "C" fn(NftCtx) -> *const c_char,
    get_error_buffer: unsafe extern "C" fn(NftCtx) -> *const c_char,
    run_cmd_from_buffer: unsafe extern "C" fn(NftCtx, *const c_char) -> c_int,
    output_get_flags: unsafe extern "C" fn(NftCtx) -> c_uint,
    output_set_flags: unsafe extern "C" fn(NftCtx, c_uint),
    _lib: libloading::Library,
}

impl Api {
    /// Loads `name` and resolves every symbol berth needs.
    pub(crate) fn load(name: &str) -> Result<Api, FwError> {
        // SAFETY: libnftables' initialisers are safe to run; the library is
        // a plain C library with no unusual load-time requirements.
        let lib =
            unsafe { libloading::Library::new(name) }.map_err(|e| FwError::LibraryNotFound {
                library: name.to_string(),
                detail: e.to_string(),
            })?;
        macro_rules! sym {
            ($name:literal) => {{
                // SAFETY: the Rust type given at the use site matches the C
                // prototype in libnftables.h; the pointer is only used while
                // `lib` (stored in the same `Api`) is loaded.
                let s = unsafe { lib.get(concat!($name, "\0").as_bytes()) }.map_err(|e| {
                    FwError::LibraryIncompatible {
                        library: name.to_string(),
                        detail: format!("symbol {}: {e}", $name),
                    }
                })?;
                *s
            }};
        }
        Ok(Api {
            ctx_new: sym!("nft_ctx_new"),
            ctx_free: sym!("nft_ctx_free"),
            buffer_output: sym!("nft_ctx_buffer_output"),
            buffer_error: sym!("nft_ctx_buffer_error"),
            get_output_buffer: sym!("nft_ctx_get_output_buffer"),
            get_error_buffer: sym!("nft_ctx_get_error_buffer"),
            run_cmd_from_buffer: sym!("nft_run_cmd_from_buffer"),
            output_get_flags: sym!("nft_ctx_output_get_flags"),
            output_set_flags: sym!("nft_ctx_output_set_flags"),
            _lib: lib,
        })
    }

    /// The process-wide instance of [`LIBRARY`], loaded on first use. A load
    /// failure is remembered (and reported again on every call).
    pub(crate) fn get() -> Result<&'static Api, FwError> {
        static API: OnceLock<Result<Api, FwError>> = OnceLock::new();
        match API.get_or_init(|| Api::load(LIBRARY)) {
            Ok(api) => Ok(api),
            Err(e) => Err(e.clone()),
        }
    }
}

/// A libnftables context, buffered output and errors.
struct Handle(NonNull<c_void>);

// SAFETY: the context is only ever used while holding the mutex in `Context`,
// i.e. from one thread at a time; libnftables keeps no thread-local state.
unsafe impl Send for Handle {}

/// What one `nft_run_cmd_from_buffer` call printed.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub ok: bool,
    pub output: String,
    pub error: String,
}

/// One libnftables context behind a mutex.
pub(crate) struct Context {
    api: &'static Api,
    handle: Mutex<Handle>,
}

impl Context {
    pub(crate) fn new() -> Result<Context, FwError> {
        let api = Api::get()?;
        // SAFETY: plain constructor; a null return is handled.
        let raw = unsafe { (api.ctx_new)(NFT_CTX_DEFAULT) };
        let handle = NonNull::new(raw).ok_or(FwError::Context(
            "nft_ctx_new returned no context (out of memory?)",
        ))?;
        // SAFETY: `handle` is a live context owned by us.
        let buffered = unsafe {
            (api.buffer_output)(handle.as_ptr()) == 0 && (api.buffer_error)(handle.as_ptr()) == 0
        };
        if !buffered {
            // SAFETY: freed exactly once, never used again.
            unsafe { (api.ctx_free)(handle.as_ptr()) };
            return Err(FwError::Context(
                "could not buffer the output of the nftables context",
            ));
        }
        Ok(Context {
            api,
            handle: Mutex::new(Handle(handle)),
        })
    }

    /// Runs an nft script (one or more commands, one atomic transaction).
    pub(crate) fn run(&self, script: &str) -> Result<Outcome, FwError> {
        self.run_with(script, false)
    }

    /// Runs a command (typically `list ...`) with JSON output.
    pub(crate) fn run_json(&self, command: &str) -> Result<Outcome, FwError> {
        self.run_with(command, true)
    }

    fn run_with(&self, script: &str, json: bool) -> Result<Outcome, FwError> {
        let c_script = CString::new(script).map_err(|_| FwError::Nft {
            action: "running an nft script".to_string(),
            message: "the script contains a NUL byte".to_string(),
        })?;
        let guard = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        let ctx = guard.0.as_ptr();
        let api = self.api;
        // SAFETY: `ctx` is live and exclusively ours while `guard` is held;
        // `c_script` outlives the call; returned buffers are copied before
        // the next call on the context can overwrite them.
        unsafe {
            let flags = (api.output_get_flags)(ctx);
            if json {
                (api.output_set_flags)(ctx, flags | NFT_CTX_OUTPUT_JSON);
            }
            let rc = (api.run_cmd_from_buffer)(ctx, c_script.as_ptr());
            if json {
                (api.output_set_flags)(ctx, flags);
            }
            // Always drain both buffers: reading them also rewinds them.
            let output = buffer_to_string((api.get_output_buffer)(ctx));
            let error = buffer_to_string((api.get_error_buffer)(ctx));
            Ok(Outcome {
                ok: rc == 0,
                output,
                error,
            })
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let handle = self.handle.get_mut().unwrap_or_else(|p| p.into_inner());
        // SAFETY: last use of the context, which we own.
        unsafe { (self.api.ctx_free)(handle.0.as_ptr()) };
    }
}

/// Copies a NUL-terminated buffer owned by libnftables.
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string valid for the call.
unsafe fn buffer_to_string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_is_a_clear_error() {
        let err = Api::load("libnftables-berth-does-not-exist.so.1")
            .err()
            .expect("loading a missing library must fail");
        assert!(matches!(err, FwError::LibraryNotFound { .. }));
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "nftables library libnftables-berth-does-not-exist.so.1 not found: install the nftables package"
            ),
            "{msg}"
        );
    }

    #[test]
    fn library_loads_and_has_every_symbol() {
        // Needs only the library, not root: nothing is run.
        Api::load(LIBRARY).unwrap_or_else(|e| panic!("{e}"));
        let api = Api::get().unwrap_or_else(|e| panic!("{e}"));
        assert!(std::ptr::eq(api, Api::get().unwrap()), "loaded once");
    }
}
