//! The calls (wasm32 only): see the crate's documentation.

use proxy_wasm::types::Status;
use std::ptr::{null, null_mut};

use crate::map::{deserialize_map, serialize_map};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_register_shared_queue(name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_dequeue_shared_queue(
        queue_id: u32,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

/// `proxy_continue_stream`'s stream type of the request.
const HTTP_REQUEST: u32 = 0;
/// `MapType::HttpRequestHeaders`.
const REQUEST_HEADERS: u32 = 0;
/// `BufferType::HttpRequestBody`.
const REQUEST_BODY: u32 = 0;

/// A status word as a `Result` (an unknown word is an `InternalFailure`).
fn status(word: u32) -> Result<(), Status> {
    Err(match word {
        0 => return Ok(()),
        1 => Status::NotFound,
        2 => Status::BadArgument,
        3 => Status::SerializationFailure,
        4 => Status::ParseFailure,
        7 => Status::Empty,
        8 => Status::CasMismatch,
        _ => Status::InternalFailure,
    })
}

/// Calls `call` with out-pointers for a buffer the host allocates with the SDK's
/// `proxy_on_memory_allocate` (a boxed slice of exactly its size), and takes the buffer.
fn with_buffer(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> (Result<(), Status>, Vec<u8>) {
    let (mut data, mut size) = (null_mut(), 0);
    let word = call(&mut data, &mut size);
    // SAFETY: the host hands over a buffer from `proxy_on_memory_allocate(size)`, or null.
    let bytes = (!data.is_null()).then(|| unsafe { Vec::from_raw_parts(data, size, size) });
    (status(word), bytes.unwrap_or_default())
}

/// The effective context's request headers (names are lower-case ASCII in Envoy; values are
/// bytes, as a client may send obs-text).
pub fn request_headers() -> Result<Vec<(String, Vec<u8>)>, Status> {
    // SAFETY: the out-pointers are live for the call (so in every call to `with_buffer`).
    let (word, bytes) =
        with_buffer(|data, size| unsafe { proxy_get_header_map_pairs(REQUEST_HEADERS, data, size) });
    word?;
    deserialize_map(&bytes).ok_or(Status::SerializationFailure)
}

/// The first `max` bytes of the effective context's request body as the host buffered it
/// (during its body callback, or after one that buffered it); `NotFound` when there is none.
pub fn request_body(max: usize) -> Result<Vec<u8>, Status> {
    // SAFETY: as in `request_headers`.
    let (word, bytes) =
        with_buffer(|data, size| unsafe { proxy_get_buffer_bytes(REQUEST_BODY, 0, max, data, size) });
    word?;
    Ok(bytes)
}

/// Answers the effective context's request locally (`BadArgument`, ... when it cannot).
pub fn send_local_response(code: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), Status> {
    let headers = serialize_map(headers);
    // SAFETY: every pointer is valid for its length during the call.
    status(unsafe {
        proxy_send_local_response(
            code,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Lets the effective context's paused request go on.
pub fn resume_request() -> Result<(), Status> {
    // SAFETY: no pointers.
    status(unsafe { proxy_continue_stream(HTTP_REQUEST) })
}

/// Sets request header `name` to `value` (every copy replaced), or (`None`) removes every copy.
pub fn edit_request_header(name: &str, value: Option<&str>) -> Result<(), Status> {
    let (key, key_len) = (name.as_ptr(), name.len());
    // SAFETY: every pointer is valid for its length during the call.
    status(unsafe {
        match value {
            Some(v) => proxy_replace_header_map_value(REQUEST_HEADERS, key, key_len, v.as_ptr(), v.len()),
            None => proxy_remove_header_map_value(REQUEST_HEADERS, key, key_len),
        }
    })
}

/// The shared-data value of `key` and its version (`cas`); `Ok(None)` when there is none.
pub fn get_shared_data(key: &str) -> Result<Option<(Vec<u8>, u32)>, Status> {
    let mut cas = 0;
    // SAFETY: the key is valid for its length; `cas` is a live local.
    let call = |data, size| unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), data, size, &mut cas) };
    match with_buffer(call) {
        (Ok(()), value) => Ok(Some((value, cas))),
        (Err(Status::NotFound), _) => Ok(None),
        (Err(other), _) => Err(other),
    }
}

/// Writes `value` under `key` if its version is still `cas` (0: unconditionally); a missing
/// key is always written. `CasMismatch` when another writer came first.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
    // SAFETY: both pointers are valid for their lengths during the call.
    status(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) })
}

/// Registers this VM's shared queue `name` (the calling root context gets `on_queue_ready`).
pub fn register_shared_queue(name: &str) -> Result<u32, Status> {
    let mut id = 0;
    // SAFETY: the name is valid for its length; the out-pointer is a live local.
    status(unsafe { proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Takes the next item of queue `id`; `Ok(None)` when it is empty.
pub fn dequeue_shared_queue(id: u32) -> Result<Option<Vec<u8>>, Status> {
    // SAFETY: as in `request_headers`.
    match with_buffer(|data, size| unsafe { proxy_dequeue_shared_queue(id, data, size) }) {
        (Ok(()), value) => Ok(Some(value)),
        (Err(Status::Empty), _) => Ok(None),
        (Err(other), _) => Err(other),
    }
}

/// Adds `value` to queue `id`.
pub fn enqueue_shared_queue(id: u32, value: &[u8]) -> Result<(), Status> {
    // SAFETY: the pointer is valid for its length during the call.
    status(unsafe { proxy_enqueue_shared_queue(id, value.as_ptr(), value.len()) })
}

/// Makes `context` the one host calls act on (`BadArgument`: it is gone).
pub fn set_effective_context(context: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    status(unsafe { proxy_set_effective_context(context) })
}
