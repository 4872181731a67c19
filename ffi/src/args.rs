//! Checks of C arguments: NULL pointers and UTF-8.

use std::ffi::c_char;

use crate::result::Failure;
use crate::result::almost_raft_result::*;

/// A string argument given as pointer and length. NULL is accepted only with length 0.
pub(crate) fn str_arg<'a>(ptr: *const c_char, len: usize, what: &str) -> Result<&'a str, Failure> {
    let bytes = bytes_arg(ptr.cast(), len, what)?;
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            ALMOST_RAFT_INVALID_UTF8,
            format!("{what} is not valid UTF-8: {e}"),
        )
    })
}

/// A byte-string argument. NULL is accepted only with length 0.
pub(crate) fn bytes_arg<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(null(what)) };
    }
    // SAFETY: the caller promises `ptr` points to `len` readable bytes for this call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A required pointer.
pub(crate) fn non_null<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller promises a non-NULL pointer is valid for this call.
    unsafe { ptr.as_ref() }.ok_or_else(|| null(what))
}

pub(crate) fn non_null_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: as above, and the caller does not use it from another thread meanwhile.
    unsafe { ptr.as_mut() }.ok_or_else(|| null(what))
}

pub(crate) fn null(what: &str) -> Failure {
    Failure::new(ALMOST_RAFT_NULL_POINTER, format!("{what} is NULL"))
}
