//! Small wrappers over raw N-API calls: exact control of types, errors and exceptions. Every
//! function here must run on the JS thread of `env`.

use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::*;
use napi::sys;

pub type Value = sys::napi_value;
type RawEnv = sys::napi_env;

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        // A pending exception stays pending: napi-rs then throws nothing else.
        Err(Error::new(Status::from(status), "N-API call failed"))
    }
}

pub fn object(env: RawEnv) -> Result<Value> {
    let mut v = ptr::null_mut();
    check(unsafe { sys::napi_create_object(env, &mut v) })?;
    Ok(v)
}

pub fn string(env: RawEnv, s: &str) -> Result<Value> {
    let mut v = ptr::null_mut();
    check(unsafe {
        sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut v)
    })?;
    Ok(v)
}

pub fn null(env: RawEnv) -> Result<Value> {
    let mut v = ptr::null_mut();
    check(unsafe { sys::napi_get_null(env, &mut v) })?;
    Ok(v)
}

pub fn undefined(env: RawEnv) -> Result<Value> {
    let mut v = ptr::null_mut();
    check(unsafe { sys::napi_get_undefined(env, &mut v) })?;
    Ok(v)
}

pub fn number(env: RawEnv, n: f64) -> Result<Value> {
    let mut v = ptr::null_mut();
    check(unsafe { sys::napi_create_double(env, n, &mut v) })?;
    Ok(v)
}

pub fn boolean(env: RawEnv, b: bool) -> Result<Value> {
    let mut v = ptr::null_mut();
    check(unsafe { sys::napi_get_boolean(env, b, &mut v) })?;
    Ok(v)
}

/// A new Buffer holding a copy of `data`.
pub fn buffer(env: RawEnv, data: &[u8]) -> Result<Value> {
    let mut v = ptr::null_mut();
    let mut out = ptr::null_mut();
    check(unsafe {
        sys::napi_create_buffer_copy(env, data.len(), data.as_ptr().cast(), &mut out, &mut v)
    })?;
    Ok(v)
}

pub fn global(env: RawEnv) -> Result<Value> {
    let mut v = ptr::null_mut();
    check(unsafe { sys::napi_get_global(env, &mut v) })?;
    Ok(v)
}

fn key(env: RawEnv, name: &str) -> Result<Value> {
    string(env, name)
}

pub fn set(env: RawEnv, obj: Value, name: &str, value: Value) -> Result<()> {
    let k = key(env, name)?;
    check(unsafe { sys::napi_set_property(env, obj, k, value) })
}

pub fn set_by(env: RawEnv, obj: Value, k: Value, value: Value) -> Result<()> {
    check(unsafe { sys::napi_set_property(env, obj, k, value) })
}

/// `obj[name]`; a throwing getter leaves its exception pending and returns Err.
pub fn get(env: RawEnv, obj: Value, name: &str) -> Result<Value> {
    let k = key(env, name)?;
    let mut v = ptr::null_mut();
    check(unsafe { sys::napi_get_property(env, obj, k, &mut v) })?;
    Ok(v)
}

pub fn type_of(env: RawEnv, v: Value) -> Result<sys::napi_valuetype> {
    let mut t = 0;
    check(unsafe { sys::napi_typeof(env, v, &mut t) })?;
    Ok(t)
}

pub fn get_string(env: RawEnv, v: Value) -> Result<String> {
    let mut len = 0;
    check(unsafe { sys::napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut len) })?;
    let mut buf = vec![0u8; len + 1];
    let mut written = 0;
    check(unsafe {
        sys::napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast(), buf.len(), &mut written)
    })?;
    buf.truncate(written);
    // N-API writes UTF-8 (lone surrogates become U+FFFD).
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub fn get_bool(env: RawEnv, v: Value) -> Result<bool> {
    let mut b = false;
    check(unsafe { sys::napi_get_value_bool(env, v, &mut b) })?;
    Ok(b)
}

pub fn get_number(env: RawEnv, v: Value) -> Result<f64> {
    let mut n = 0.0;
    check(unsafe { sys::napi_get_value_double(env, v, &mut n) })?;
    Ok(n)
}

pub fn strict_equals(env: RawEnv, a: Value, b: Value) -> Result<bool> {
    let mut eq = false;
    check(unsafe { sys::napi_strict_equals(env, a, b, &mut eq) })?;
    Ok(eq)
}

pub fn is_array(env: RawEnv, v: Value) -> Result<bool> {
    let mut b = false;
    check(unsafe { sys::napi_is_array(env, v, &mut b) })?;
    Ok(b)
}

pub fn array_len(env: RawEnv, v: Value) -> Result<u32> {
    let mut n = 0;
    check(unsafe { sys::napi_get_array_length(env, v, &mut n) })?;
    Ok(n)
}

pub fn element(env: RawEnv, v: Value, i: u32) -> Result<Value> {
    let mut e = ptr::null_mut();
    check(unsafe { sys::napi_get_element(env, v, i, &mut e) })?;
    Ok(e)
}

/// The enumerable string keys of an object.
pub fn keys(env: RawEnv, obj: Value) -> Result<Vec<String>> {
    let mut names = ptr::null_mut();
    check(unsafe { sys::napi_get_property_names(env, obj, &mut names) })?;
    let len = array_len(env, names)?;
    (0..len)
        .map(|i| {
            let k = element(env, names, i)?;
            get_string(env, k)
        })
        .collect()
}

/// The bytes of a Uint8Array (a Buffer is one), or None for any other value. The slice points
/// into JS memory: use it before any JS runs again.
pub fn bytes<'a>(env: RawEnv, v: Value) -> Result<Option<&'a [u8]>> {
    let mut is_typed = false;
    check(unsafe { sys::napi_is_typedarray(env, v, &mut is_typed) })?;
    if !is_typed {
        return Ok(None);
    }
    let mut kind = 0;
    let mut len = 0;
    let mut data: *mut c_void = ptr::null_mut();
    let mut arraybuffer = ptr::null_mut();
    let mut offset = 0;
    check(unsafe {
        sys::napi_get_typedarray_info(
            env,
            v,
            &mut kind,
            &mut len,
            &mut data,
            &mut arraybuffer,
            &mut offset,
        )
    })?;
    if kind != sys::TypedarrayType::uint8_array {
        return Ok(None);
    }
    if len == 0 || data.is_null() {
        return Ok(Some(&[]));
    }
    // SAFETY: N-API gives the typed array's data (already offset) and its length in bytes.
    Ok(Some(unsafe {
        std::slice::from_raw_parts(data.cast::<u8>(), len)
    }))
}

/// How Node.js describes a received value in ERR_INVALID_ARG_TYPE messages.
pub fn describe(env: RawEnv, v: Value) -> String {
    let described = (|| -> Result<String> {
        Ok(match type_of(env, v)? {
            sys::ValueType::napi_undefined => "undefined".into(),
            sys::ValueType::napi_null => "null".into(),
            sys::ValueType::napi_boolean => format!("type boolean ({})", get_bool(env, v)?),
            sys::ValueType::napi_number => format!("type number ({})", get_number(env, v)?),
            sys::ValueType::napi_string => {
                let s = get_string(env, v)?;
                let short: String = s.chars().take(25).collect();
                if short.len() < s.len() {
                    format!("type string ({short:?}...)")
                } else {
                    format!("type string ({s:?})")
                }
            }
            sys::ValueType::napi_function => "function".into(),
            sys::ValueType::napi_symbol => "type symbol".into(),
            sys::ValueType::napi_object => {
                let ctor = get(env, v, "constructor")?;
                let name = if type_of(env, ctor)? == sys::ValueType::napi_function {
                    let name = get(env, ctor, "name")?;
                    if type_of(env, name)? == sys::ValueType::napi_string {
                        get_string(env, name)?
                    } else {
                        String::new()
                    }
                } else {
                    String::new()
                };
                if name.is_empty() {
                    "type object".into()
                } else {
                    format!("an instance of {name}")
                }
            }
            _ => "type bigint".into(),
        })
    })();
    clear_exception(env);
    described.unwrap_or_else(|_| "a value".into())
}

/// `String(value)` for a thrown value, without letting a second exception escape.
pub fn describe_thrown(env: RawEnv, v: Value) -> String {
    let mut s = ptr::null_mut();
    let text = if unsafe { sys::napi_coerce_to_string(env, v, &mut s) } == sys::Status::napi_ok {
        get_string(env, s).ok()
    } else {
        None
    };
    clear_exception(env);
    text.unwrap_or_else(|| "a value that cannot be printed".into())
}

pub fn clear_exception(env: RawEnv) {
    let mut pending = false;
    if unsafe { sys::napi_is_exception_pending(env, &mut pending) } == sys::Status::napi_ok
        && pending
    {
        let mut e = ptr::null_mut();
        unsafe { sys::napi_get_and_clear_last_exception(env, &mut e) };
    }
}

/// Takes the pending exception, if any.
fn take_exception(env: RawEnv) -> Option<Value> {
    let mut pending = false;
    if unsafe { sys::napi_is_exception_pending(env, &mut pending) } != sys::Status::napi_ok
        || !pending
    {
        return None;
    }
    let mut e = ptr::null_mut();
    unsafe { sys::napi_get_and_clear_last_exception(env, &mut e) };
    Some(e)
}

pub enum ErrorClass {
    Error,
    TypeError,
}

pub fn error(env: RawEnv, class: ErrorClass, code: &str, message: &str) -> Result<Value> {
    let code = string(env, code)?;
    let message = string(env, message)?;
    let mut e = ptr::null_mut();
    check(unsafe {
        match class {
            ErrorClass::Error => sys::napi_create_error(env, code, message, &mut e),
            ErrorClass::TypeError => sys::napi_create_type_error(env, code, message, &mut e),
        }
    })?;
    Ok(e)
}

/// Throws a new error into JS and returns the marker that tells napi-rs an exception is
/// pending (so it throws nothing else).
pub fn throw(env: RawEnv, class: ErrorClass, code: &str, message: &str) -> Error {
    clear_exception(env);
    if let Ok(e) = error(env, class, code, message) {
        unsafe { sys::napi_throw(env, e) };
    }
    Error::from_status(Status::PendingException)
}

/// Calls `f` with `this`; a throw is caught and returned as Err(thrown value).
pub fn call_method(
    env: RawEnv,
    this: Value,
    f: Value,
    args: &[Value],
) -> std::result::Result<Value, Value> {
    let mut result = ptr::null_mut();
    let status =
        unsafe { sys::napi_call_function(env, this, f, args.len(), args.as_ptr(), &mut result) };
    if status == sys::Status::napi_ok {
        return Ok(result);
    }
    match take_exception(env) {
        Some(e) => Err(e),
        None => Err(undefined(env).unwrap_or(ptr::null_mut())),
    }
}

/// A strong reference to a JS function, deleted when the last clone drops (on the JS thread:
/// only JS-thread state holds these).
#[derive(Clone)]
pub struct JsRef(Rc<RefInner>);

struct RefInner {
    env: RawEnv,
    raw: sys::napi_ref,
}

impl Drop for RefInner {
    fn drop(&mut self) {
        unsafe { sys::napi_delete_reference(self.env, self.raw) };
    }
}

impl JsRef {
    pub fn new(env: RawEnv, v: Value) -> Result<Self> {
        let mut r = ptr::null_mut();
        check(unsafe { sys::napi_create_reference(env, v, 1, &mut r) })?;
        Ok(JsRef(Rc::new(RefInner { env, raw: r })))
    }

    pub fn value(&self, env: RawEnv) -> Result<Value> {
        let mut v = ptr::null_mut();
        check(unsafe { sys::napi_get_reference_value(env, self.0.raw, &mut v) })?;
        Ok(v)
    }

    /// Calls the function with `this` undefined; a throw comes back as Err(thrown value).
    pub fn call(&self, env: RawEnv, args: &[Value]) -> std::result::Result<(), Value> {
        let f = self
            .value(env)
            .map_err(|_| undefined(env).unwrap_or(ptr::null_mut()))?;
        let this = undefined(env).map_err(|_| ptr::null_mut())?;
        call_method(env, this, f, args).map(|_| ())
    }
}

/// The settling half of a promise made with `napi_create_promise`; settled on the JS thread.
pub struct Deferred(sys::napi_deferred);

impl Deferred {
    pub fn new(env: RawEnv) -> Result<(Deferred, Value)> {
        let mut d = ptr::null_mut();
        let mut p = ptr::null_mut();
        check(unsafe { sys::napi_create_promise(env, &mut d, &mut p) })?;
        Ok((Deferred(d), p))
    }

    pub fn resolve(self, env: RawEnv, value: Value) {
        unsafe { sys::napi_resolve_deferred(env, self.0, value) };
    }

    pub fn reject(self, env: RawEnv, error: Value) {
        unsafe { sys::napi_reject_deferred(env, self.0, error) };
    }
}
