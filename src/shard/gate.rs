//! What a client may do, checked before its request is routed: nothing but AUTH, HELLO, QUIT
//! and RESET before it has logged in (when the default user has a password), and for a user with
//! rules, only the commands and keys those rules allow. A client logged in as a user who may
//! do everything passes with one flag read.

use bytes::Bytes;

use crate::auth::User;
use crate::command::keys::{for_each_key, Args};
use crate::command::route::{Command, Local, Rejection, Route};

use super::dispatch::error_reply;
use super::identity::Identity;

/// Redis's reply to a request before authentication.
const NOAUTH: &[u8] = b"-NOAUTH Authentication required.\r\n";
/// Redis's reply to a request that touches a key the user may not.
const NOPERM_KEYS: &[u8] =
    b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";

/// The refusal of a request the client may not make, if it may not.
pub fn refusal<A: Args + ?Sized>(
    users: &crate::auth::Users,
    identity: &Identity,
    route: &Route,
    command: Option<Command>,
    args: &A,
) -> Option<Bytes> {
    // As in Redis, a command that does not exist or has the wrong arity says so first.
    if let Route::Reject(
        Rejection::UnknownCommand | Rejection::UnknownSubcommand(_) | Rejection::WrongArity(..),
    ) = route
    {
        return None;
    }
    let exempt = matches!(
        route,
        Route::Local(Local::Auth | Local::Hello | Local::Quit | Local::Reset)
    );
    match identity.user() {
        None if exempt => None,
        None => Some(Bytes::from_static(NOAUTH)),
        Some(user) if identity.restricted() && !exempt => {
            forbidden(users.get(user), route, command, args)
        }
        Some(_) => None,
    }
}

/// The NOPERM refusal of a request `user`'s rules forbid.
fn forbidden<A: Args + ?Sized>(
    user: &User,
    route: &Route,
    command: Option<Command>,
    args: &A,
) -> Option<Bytes> {
    let Some(command) = command else {
        // percore's own PROXY commands administer the proxy.
        return (!user.may_administer() && matches!(route, Route::Local(Local::Proxy)))
            .then(|| no_permission("proxy"));
    };
    if !user.may_run(command.spec) {
        return Some(no_permission(&command.full_name()));
    }
    let mut denied = false;
    // A key error (bad numkeys) is the command's to report, after the check.
    let _ = for_each_key(command.spec, args, |index| {
        denied |= !user.may_access(args.get(index));
    });
    denied.then(|| Bytes::from_static(NOPERM_KEYS))
}

fn no_permission(command: &str) -> Bytes {
    error_reply(&format!(
        "NOPERM this user has no permissions to run the '{command}' command"
    ))
}
