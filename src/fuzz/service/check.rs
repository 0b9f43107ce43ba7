//! What the target checks of each response.

use http::Request;
use http::header::{CACHE_CONTROL, HeaderValue, SET_COOKIE, VARY};
use tower_service::Service;

use super::handler::{ERROR_HEADER, Route};
use super::{CAPACITY, Fixture, block_on};
use crate::cookie::cookie_values;
use crate::fuzz::COOKIE_NAME;

/// Sends one request and checks the response; returns the session cookie value it set.
pub(super) fn send(fixture: &Fixture, request: Request<()>, route: Route) -> Option<String> {
    let previous_key_cookie = cookie_values(request.headers(), COOKIE_NAME)
        .any(|value| fixture.previous.verify(value).is_some());
    // The headers are left out: the input reproduces them.
    let described = format!("{} {}", request.method(), request.uri());
    fixture
        .layer_errors
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    let mut service = fixture.service.clone();
    let response = match block_on(service.call(request)) {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let layer_errors = std::mem::take(
        &mut *fixture
            .layer_errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let headers = response.headers();
    let status = response.status();
    let context =
        || format!("request {described}\nresponse {response:?}\nlayer errors {layer_errors:?}");

    // A server error the handler did not choose: only for a store full of
    // authenticated sessions, which the store documents.
    let replaced = status != route.status();
    if replaced {
        let capacity = headers
            .get(ERROR_HEADER)
            .is_some_and(|value| value == "capacity")
            || layer_errors.iter().any(|error| error == "capacity");
        assert!(
            capacity && fixture.store.len() >= CAPACITY,
            "a server error for client input\n{}",
            context()
        );
    }
    assert!(
        !layer_errors
            .iter()
            .any(|error| error != "capacity" && error != "Interrupted"),
        "the layer handled an error\n{}",
        context()
    );

    let set_cookies: Vec<&HeaderValue> = headers.get_all(SET_COOKIE).iter().collect();
    assert!(
        set_cookies.len() <= 1,
        "more than one Set-Cookie\n{}",
        context()
    );
    let set_value = set_cookies.first().map(|set_cookie| {
        assert_eq!(
            headers.get_all(CACHE_CONTROL).iter().collect::<Vec<_>>(),
            [HeaderValue::from_static("no-store")],
            "a Set-Cookie without Cache-Control: no-store\n{}",
            context()
        );
        let text = set_cookie
            .to_str()
            .unwrap_or_else(|_| panic!("a Set-Cookie that is not ASCII\n{}", context()));
        let mut attributes = text.split("; ");
        let pair = attributes.next().unwrap_or_default();
        let value = pair
            .strip_prefix(COOKIE_NAME)
            .and_then(|rest| rest.strip_prefix('='))
            .unwrap_or_else(|| panic!("a Set-Cookie for another name\n{}", context()));
        let attributes: Vec<&str> = attributes.collect();
        for attribute in ["Secure", "HttpOnly", "Path=/", "SameSite=Lax"] {
            assert!(
                attributes.contains(&attribute),
                "a Set-Cookie without {attribute}\n{}",
                context()
            );
        }
        assert!(
            value.is_empty() || fixture.current.verify(value.as_bytes()).is_some(),
            "a Set-Cookie whose value the current key did not sign\n{}",
            context()
        );
        value.to_owned()
    });

    if status.is_server_error() {
        assert!(
            set_value.as_deref().is_none_or(str::is_empty),
            "a session cookie issued with a server error\n{}",
            context()
        );
    }
    if route == Route::Untouched {
        assert!(
            set_value.is_none() || previous_key_cookie,
            "a cookie set for an untouched session\n{}",
            context()
        );
    } else if !replaced {
        let varies = headers.get_all(VARY).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|field| field.trim().eq_ignore_ascii_case("cookie"))
            })
        });
        assert!(
            varies,
            "no Vary: cookie after the handler used the session\n{}",
            context()
        );
    }
    set_value.filter(|value| !value.is_empty())
}
