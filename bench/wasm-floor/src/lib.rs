//! The Wasm floor for `make bench`: a proxy-wasm HTTP filter that reads the `authorization`
//! request header and lets the request continue. What it costs is what every proxy-wasm
//! filter pays on this Envoy (VM entry, host calls, header copy) before doing any work, so
//! tokengate's figures are read against it.

#[cfg(target_arch = "wasm32")]
mod filter {
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, ContextType, LogLevel};

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(LogLevel::Warn);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
    }}

    struct Root;

    impl Context for Root {}

    impl RootContext for Root {
        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }

        fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(ReadOneHeader))
        }
    }

    struct ReadOneHeader;

    impl Context for ReadOneHeader {}

    impl HttpContext for ReadOneHeader {
        fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
            // The `Result`-returning host call: a host error is ignored, never a panic.
            let _ = proxy_wasm::hostcalls::get_map_value(
                proxy_wasm::types::MapType::HttpRequestHeaders,
                "authorization",
            );
            Action::Continue
        }
    }
}
