//! The one way handlers read a JSON body: [`JsonBody`], whose rejections are sentences a person
//! can act on, answered as 400 in the app's error format.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::AppError;

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(AppError::BadRequest(sentence(&rejection))),
        }
    }
}

fn sentence(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "Send the body as JSON, with the header Content-Type: application/json.".into()
        }
        JsonRejection::JsonSyntaxError(_) => format!("The request body is not valid JSON: {}.", detail(rejection)),
        JsonRejection::JsonDataError(_) => format!("The request body is not valid: {}.", detail(rejection)),
        _ => "The request body could not be read: it may be too large, or the connection dropped.".into(),
    }
}

/// serde's own words, without axum's preamble.
fn detail(rejection: &JsonRejection) -> String {
    let text = rejection.body_text();
    let text = text.split_once(": ").map_or(text.as_str(), |(_, rest)| rest);
    text.trim_end_matches('.').to_string()
}
