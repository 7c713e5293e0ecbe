//! Both WebAuthn ceremonies of `access::passkeys`, end to end against the software
//! authenticator: what verifies, and what a relying party must refuse (another origin, another
//! account's passkey, a replayed assertion, a state from another ceremony).

use shared::access::passkeys::{self, PasskeyError, RelyingParty};
use shared::domain::UserId;
use shared::store::Passkey;
use shared::testing::authenticator::SoftPasskey;

const ORIGIN: &str = "https://console.example.com";

fn rp() -> RelyingParty {
    RelyingParty::from_origin(ORIGIN).expect("a domain origin")
}

fn stored(new: passkeys::NewPasskey) -> Passkey {
    Passkey {
        id: new.id,
        name: "test".into(),
        public_key: new.public_key,
        state: new.state,
        transports: new.transports,
        created_at: 0,
        last_used_at: None,
    }
}

fn registered(user: &UserId) -> (SoftPasskey, Passkey) {
    let started = passkeys::start_registration(&rp(), user, "ada@example.com", None, &[]).unwrap();
    let (soft, response) = SoftPasskey::register(&started.options, ORIGIN);
    let new = passkeys::finish_registration(
        &rp(),
        user,
        &started.state,
        &serde_json::to_vec(&response).unwrap(),
    )
    .expect("the registration verifies");
    assert_eq!(new.id, soft.id());
    (soft, stored(new))
}

#[test]
fn a_registered_passkey_signs_in_and_its_counter_moves() {
    let user = UserId::new_random();
    let (mut soft, mut passkey) = registered(&user);
    for _ in 0..2 {
        let started = passkeys::start_assertion(&rp(), std::slice::from_ref(&passkey)).unwrap();
        assert_eq!(started.options["allowCredentials"][0]["id"], passkey.id);
        let answer = serde_json::to_vec(&soft.assert(&started.options, ORIGIN)).unwrap();
        let used =
            passkeys::finish_assertion(&rp(), &user, &started.state, &answer, &[passkey.clone()])
                .expect("the assertion verifies");
        assert_eq!(used.id, passkey.id);
        assert_eq!(used.before, passkey.state);
        assert_ne!(used.after, used.before, "the signature counter moved");
        passkey.state = used.after;
    }
}

#[test]
fn another_origin_is_refused_at_both_ceremonies() {
    let user = UserId::new_random();
    let started = passkeys::start_registration(&rp(), &user, "ada@example.com", None, &[]).unwrap();
    let (_, response) = SoftPasskey::register(&started.options, "https://evil.example.net");
    let refused = passkeys::finish_registration(
        &rp(),
        &user,
        &started.state,
        &serde_json::to_vec(&response).unwrap(),
    );
    assert!(
        matches!(refused, Err(PasskeyError::Refused(_))),
        "{refused:?}"
    );

    let (mut soft, passkey) = registered(&user);
    let started = passkeys::start_assertion(&rp(), std::slice::from_ref(&passkey)).unwrap();
    let answer =
        serde_json::to_vec(&soft.assert(&started.options, "https://evil.example.net")).unwrap();
    let refused = passkeys::finish_assertion(&rp(), &user, &started.state, &answer, &[passkey]);
    assert!(
        matches!(refused, Err(PasskeyError::Refused(_))),
        "{refused:?}"
    );
}

#[test]
fn a_registration_answers_only_its_own_ceremony() {
    let user = UserId::new_random();
    let first = passkeys::start_registration(&rp(), &user, "ada@example.com", None, &[]).unwrap();
    let second = passkeys::start_registration(&rp(), &user, "ada@example.com", None, &[]).unwrap();
    let (_, response) = SoftPasskey::register(&first.options, ORIGIN);
    let body = serde_json::to_vec(&response).unwrap();
    assert!(matches!(
        passkeys::finish_registration(&rp(), &user, &second.state, &body),
        Err(PasskeyError::Refused(_))
    ));
    // Nor another account's (the user handle is the account's).
    assert!(matches!(
        passkeys::finish_registration(&rp(), &UserId::new_random(), &first.state, &body),
        Err(PasskeyError::Refused(_))
    ));
}

#[test]
fn another_accounts_passkey_and_a_replay_are_refused() {
    let (ada, bob) = (UserId::new_random(), UserId::new_random());
    let (mut ada_soft, ada_key) = registered(&ada);
    let (_, bob_key) = registered(&bob);
    // Bob's sign-in lists Bob's passkey; Ada's authenticator answers it.
    let started = passkeys::start_assertion(&rp(), std::slice::from_ref(&bob_key)).unwrap();
    let answer = serde_json::to_vec(&ada_soft.assert(&started.options, ORIGIN)).unwrap();
    assert!(matches!(
        passkeys::finish_assertion(
            &rp(),
            &bob,
            &started.state,
            &answer,
            std::slice::from_ref(&bob_key)
        ),
        Err(PasskeyError::Refused(_))
    ));
    // An assertion verified once, presented again against the counter it moved: refused.
    let started = passkeys::start_assertion(&rp(), std::slice::from_ref(&ada_key)).unwrap();
    let answer = serde_json::to_vec(&ada_soft.assert(&started.options, ORIGIN)).unwrap();
    let used = passkeys::finish_assertion(
        &rp(),
        &ada,
        &started.state,
        &answer,
        std::slice::from_ref(&ada_key),
    )
    .unwrap();
    let moved = Passkey {
        state: used.after,
        ..ada_key
    };
    assert!(matches!(
        passkeys::finish_assertion(&rp(), &ada, &started.state, &answer, &[moved]),
        Err(PasskeyError::Refused(_))
    ));
}
