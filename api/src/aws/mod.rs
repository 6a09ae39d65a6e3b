//! The AWS JSON protocol on `POST /`: `X-Amz-Target` names the service and operation.

pub mod sigv4;
