//! The codec against an independent implementation (hickory-proto), and random input.

use super::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query as HQuery, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use rand::{Rng, SeedableRng};

fn query_bytes(name: &str, rtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(0x1234)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(HQuery::query(Name::from_ascii(name).unwrap(), rtype));
    if edns {
        let mut e = hickory_proto::op::Edns::new();
        e.set_max_payload(4096);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

#[test]
fn parses_what_hickory_writes() {
    let b = query_bytes("Web.AppNet.", RecordType::A, false);
    let q = parse(&b).unwrap();
    assert_eq!((q.id, q.qtype, q.qclass), (0x1234, TYPE_A, CLASS_IN));
    assert_eq!(q.name(), "web.appnet");
    assert_eq!(q.edns, None);
    assert_eq!(q.udp_limit(), 512);
    let b = query_bytes("db.", RecordType::AAAA, true);
    let q = parse(&b).unwrap();
    assert_eq!((q.name(), q.qtype, q.edns), ("db", TYPE_AAAA, Some(4096)));
    assert_eq!(q.udp_limit(), 4096);
}

#[test]
fn answers_read_back_with_hickory() {
    let b = query_bytes("Web.", RecordType::A, true);
    let q = parse(&b).unwrap();
    let ips = [
        Rdata::Addr("10.0.0.3".parse().unwrap()),
        Rdata::Addr("10.0.0.4".parse().unwrap()),
    ];
    let mut out = Vec::new();
    answer(
        &q,
        NOERROR,
        ips.iter().copied(),
        600,
        q.udp_limit(),
        &mut out,
    );
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.id(), 0x1234);
    assert_eq!(m.message_type(), MessageType::Response);
    assert!(m.authoritative() && m.recursion_desired() && m.recursion_available());
    assert_eq!(
        m.queries()[0].name().to_ascii(),
        "Web.",
        "question echoed as asked"
    );
    let got: Vec<String> = m
        .answers()
        .iter()
        .map(|r| {
            assert_eq!(r.ttl(), 600);
            assert_eq!(r.name().to_ascii(), "Web.");
            match r.data() {
                RData::A(a) => a.to_string(),
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(got, ["10.0.0.3", "10.0.0.4"]);
    assert!(m.extensions().is_some(), "OPT answered with OPT");

    let b = query_bytes("2.0.0.10.in-addr.arpa.", RecordType::PTR, false);
    let q = parse(&b).unwrap();
    assert_eq!(ptr_addr(q.name()), Some("10.0.0.2".parse().unwrap()));
    answer(&q, NOERROR, [Rdata::Ptr("db.appnet")], 600, 512, &mut out);
    let m = Message::from_vec(&out).unwrap();
    match m.answers()[0].data() {
        RData::PTR(p) => assert_eq!(p.0.to_ascii(), "db.appnet."),
        other => panic!("{other:?}"),
    }

    failure(&q, NXDOMAIN, &mut out);
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert!(!m.authoritative() && m.answers().is_empty());
}

#[test]
fn too_many_answers_truncate_for_udp() {
    let b = query_bytes("web.", RecordType::A, false);
    let q = parse(&b).unwrap();
    let ips: Vec<Rdata> = (0..100u8)
        .map(|i| Rdata::Addr(IpAddr::V4(Ipv4Addr::new(10, 0, 1, i))))
        .collect();
    let mut out = Vec::new();
    answer(&q, NOERROR, ips.iter().copied(), 600, 512, &mut out);
    assert!(out.len() <= 512);
    let m = Message::from_vec(&out).unwrap();
    assert!(m.truncated());
    assert!(m.answers().len() > 20 && m.answers().len() < 100);
    answer(&q, NOERROR, ips.iter().copied(), 600, 65535, &mut out);
    let m = Message::from_vec(&out).unwrap();
    assert!(!m.truncated());
    assert_eq!(m.answers().len(), 100);
}

#[test]
fn rejects() {
    let good = query_bytes("db.", RecordType::A, false);
    assert_eq!(parse(&good[..11]).unwrap_err(), Reject::Drop);
    let mut resp = good.clone();
    resp[2] |= 0x80;
    assert_eq!(
        parse(&resp).unwrap_err(),
        Reject::Drop,
        "responses are never answered"
    );
    let formerr = |p: &[u8]| match parse(p) {
        Err(Reject::Reply { rcode, id, .. }) => {
            assert_eq!(id, 0x1234);
            rcode
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(formerr(&good[..good.len() - 1]), FORMERR, "cut short");
    let mut extra = good.clone();
    extra.push(0);
    assert_eq!(formerr(&extra), FORMERR, "trailing bytes");
    let mut two = good.clone();
    two[5] = 2;
    assert_eq!(formerr(&two), FORMERR, "two questions");
    let mut loopy = good[..HEADER].to_vec();
    loopy.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
    assert_eq!(formerr(&loopy), FORMERR, "a pointer to itself");
    let mut status = good.clone();
    status[2] |= 2 << 3;
    assert_eq!(formerr(&status), NOTIMP, "opcode STATUS");
    // 5 labels of 63 bytes: 320 bytes of name
    let mut long = good[..HEADER].to_vec();
    for _ in 0..5 {
        long.push(63);
        long.extend_from_slice(&[b'a'; 63]);
    }
    long.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(formerr(&long), FORMERR, "a name over 255 bytes");
    // a label with a dot in it is kept but never looked up
    let mut dotted = good[..HEADER].to_vec();
    dotted.extend_from_slice(&[3, b'a', b'.', b'b', 0, 0, 1, 0, 1]);
    let q = parse(&dotted).unwrap();
    assert!(!q.plain);
    assert_eq!(q.name(), "");
}

#[test]
fn ptr_names() {
    assert_eq!(
        ptr_addr("4.3.2.1.in-addr.arpa"),
        Some("1.2.3.4".parse().unwrap())
    );
    assert_eq!(ptr_addr("3.2.1.in-addr.arpa"), None);
    assert_eq!(ptr_addr("04.3.2.1.in-addr.arpa"), None);
    assert_eq!(ptr_addr("256.3.2.1.in-addr.arpa"), None);
    let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.8.b.d.0.ip6.arpa";
    assert_eq!(ptr_addr(v6), Some("db8:fd00::1".parse().unwrap()));
    assert_eq!(ptr_addr("x.ip6.arpa"), None);
}

#[test]
fn reply_matching() {
    let q = query_bytes("db.", RecordType::A, false);
    let mut r = q.clone();
    r[2] |= 0x80;
    assert!(same_question(&q, &r));
    r[HEADER + 1] = b'D';
    assert!(same_question(&q, &r), "case may differ");
    r[HEADER + 1] = b'x';
    assert!(!same_question(&q, &r));
    let mut other_id = q.clone();
    other_id[2] |= 0x80;
    other_id[0] ^= 1;
    assert!(!same_question(&q, &other_id));
    assert!(!same_question(&q, &q), "a query is not a reply");
}

/// Property: whatever the bytes, `parse` returns (never panics, never loops), anything it
/// accepts can be answered, and the answer is a message hickory reads with the same id and
/// question. Random packets and random mutations of valid ones, from a fixed seed.
#[test]
fn random_input_never_breaks_the_codec() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xB37E);
    let seeds = [
        query_bytes("web.appnet.", RecordType::A, true),
        query_bytes("2.0.0.10.in-addr.arpa.", RecordType::PTR, false),
        query_bytes("x.", RecordType::AAAA, false),
    ];
    let mut out = Vec::new();
    let mut accepted = 0;
    for round in 0..60_000 {
        let pkt: Vec<u8> = if round % 2 == 0 {
            let len = rng.random_range(0..600);
            (0..len).map(|_| rng.random()).collect()
        } else {
            let mut p = seeds[round % 3].clone();
            for _ in 0..rng.random_range(1..4) {
                match rng.random_range(0..3) {
                    0 if !p.is_empty() => {
                        let i = rng.random_range(0..p.len());
                        p[i] = rng.random();
                    }
                    1 => p.truncate(rng.random_range(0..=p.len())),
                    _ => p.push(rng.random()),
                }
            }
            p
        };
        match parse(&pkt) {
            Ok(q) => {
                accepted += 1;
                let ips = [
                    Rdata::Addr("10.0.0.2".parse().unwrap()),
                    Rdata::Ptr(q.name()),
                ];
                answer(
                    &q,
                    NOERROR,
                    ips.iter().copied(),
                    600,
                    q.udp_limit(),
                    &mut out,
                );
                let m = Message::from_vec(&out).expect("our reply parses");
                assert_eq!(m.id(), q.id);
                assert_eq!(m.queries().len(), 1);
            }
            Err(Reject::Reply { id, flags, rcode }) => {
                error_reply(id, flags, rcode, &mut out);
                let m = Message::from_vec(&out).expect("our error parses");
                assert_eq!(m.id(), id);
            }
            Err(Reject::Drop) => {}
        }
    }
    assert!(
        accepted > 1000,
        "mutations keep many packets valid ({accepted})"
    );
}

mod props {
    //! The same, as property tests: any bytes, and valid queries with bytes changed.
    use super::super::*;
    use super::query_bytes;
    use hickory_proto::rr::RecordType;
    use proptest::prelude::*;

    fn config() -> ProptestConfig {
        ProptestConfig {
            // PROPTEST_CASES=N for a longer campaign than CI's
            cases: std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1024),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    fn check(p: &[u8]) -> Result<(), TestCaseError> {
        let _ = rcode_of(p);
        let _ = same_question(p, p);
        if let Ok(q) = parse(p) {
            let mut out = Vec::new();
            failure(&q, SERVFAIL, &mut out);
            // a reply to a query keeps its id and question
            prop_assert_eq!(&out[..2], &p[..2]);
            prop_assert!(same_question(p, &out));
            prop_assert_eq!(rcode_of(&out), Some(SERVFAIL));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_bytes(p in proptest::collection::vec(any::<u8>(), 0..600)) {
            check(&p)?;
        }

        #[test]
        fn valid_queries_with_bytes_changed(
            name in "([a-z0-9][a-z0-9-]{0,11}\\.){1,4}",
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut p = query_bytes(&name, RecordType::A, true);
            for (i, b) in edits {
                let i = i.index(p.len());
                p[i] = b;
            }
            p.truncate(cut.index(p.len() + 1));
            check(&p)?;
        }

        #[test]
        fn reverse_names(s in "([0-9a-f]{1,4}\\.){0,34}(in-addr|ip6)?\\.?(arpa)?") {
            let _ = ptr_addr(&s);
        }
    }
}
