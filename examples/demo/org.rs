//! The demo's organisation: two bank accounts, four months of card payments, and
//! receipts of every kind the real bank sends, with the names that trip archives up.

use chrono::{TimeZone, Utc};
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};

/// A PDF-looking body of `size` bytes.
fn pdf(size: usize, seed: u8) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n%demo receipt\n".to_vec();
    bytes.extend((0..size.saturating_sub(bytes.len() + 6)).map(|i| (i as u8) ^ seed));
    bytes.extend_from_slice(b"%%EOF\n");
    bytes
}

/// A JPEG-looking body (SOI marker, filler, EOI marker).
fn jpeg(size: usize, seed: u8) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..size.saturating_sub(6)).map(|i| (i as u8).wrapping_mul(7) ^ seed));
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

/// A PNG-looking body (signature, filler).
fn png(size: usize, seed: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..size.saturating_sub(8)).map(|i| (i as u8).wrapping_add(seed)));
    bytes
}

/// One payment: account index, day, cents, label, file name, kind, size.
type Row = (
    usize,
    (i32, u32, u32),
    i64,
    &'static str,
    &'static str,
    &'static str,
    usize,
);

/// The payments. Sizes go from a few hundred bytes to 5 MiB (over the 4 MiB
/// simple-upload limit, so OneDrive gets an upload session).
const ROWS: &[Row] = &[
    (
        0,
        (2025, 10, 3),
        1_249,
        "Café de l'Été",
        "ticket.jpg",
        "jpeg",
        48_000,
    ),
    (
        0,
        (2025, 10, 14),
        8_990,
        "AT&T: roaming/data?",
        "invoice.pdf",
        "pdf",
        21_000,
    ),
    (
        0,
        (2025, 10, 29),
        2_300,
        "🍕 Pizza Napoli",
        "IMG_2041.png",
        "png",
        310_000,
    ),
    (
        0,
        (2025, 11, 2),
        129_900,
        "Apple Store Opéra",
        "facture.pdf",
        "pdf",
        5 * 1024 * 1024,
    ),
    (0, (2025, 11, 9), 4_500, "CON", "receipt.pdf", "pdf", 900),
    (
        0,
        (2025, 11, 21),
        15_620,
        "TotalEnergies Relais A6",
        "scan.jpeg",
        "jpeg",
        120_000,
    ),
    (
        0,
        (2025, 12, 5),
        30_000,
        LONG_LABEL,
        "note de frais.pdf",
        "pdf",
        64_000,
    ),
    (
        0,
        (2025, 12, 18),
        7_800,
        "Boulangerie Ünal & Fils",
        "reçu.jpg",
        "jpeg",
        33_000,
    ),
    (
        1,
        (2025, 10, 20),
        1_200_000,
        "URSSAF Île-de-France",
        "avis.pdf",
        "pdf",
        180_000,
    ),
    (
        1,
        (2025, 11, 20),
        54_000,
        "Loyer bureau — Lyon 2e",
        "quittance.pdf",
        "pdf",
        96_000,
    ),
    (
        1,
        (2025, 12, 22),
        21_000,
        "OVHcloud *Serveur*",
        "facture.png",
        "png",
        72_000,
    ),
    (
        1,
        (2026, 1, 6),
        9_900,
        "Adobe: Creative Cloud",
        "invoice.pdf",
        "pdf",
        40_000,
    ),
];

/// A label longer than any file name may be: the layout shortens it.
const LONG_LABEL: &str = "Séminaire d'équipe annuel à Annecy avec hébergement, restauration, \
    location de salle, transport en autocar depuis Lyon et Genève, activités nautiques sur le \
    lac, soirée de gala et frais de dossier de l'agence événementielle organisatrice, \
    acompte numéro deux sur trois";

/// The two accounts' names.
pub const ACCOUNTS: [&str; 2] = ["Compte principal", "Épargne / Réserve"];

/// Seeds `fake`; returns the size of every receipt it added.
pub fn seed(fake: &FakeQonto) -> Vec<usize> {
    let accounts: Vec<String> = ACCOUNTS.iter().map(|n| fake.add_account(n).id).collect();
    let mut out = Vec::new();
    for (i, &(account, (y, m, d), cents, label, file, kind, size)) in ROWS.iter().enumerate() {
        let Some(account) = accounts.get(account) else {
            continue;
        };
        let at = Utc
            .with_ymd_and_hms(y, m, d, 12, 30, 0)
            .single()
            .unwrap_or_default();
        let tx = fake.add_transaction(account, NewTransaction::debit(cents, label).emitted_at(at));
        let seed = i as u8;
        let (bytes, content_type) = match kind {
            "jpeg" => (jpeg(size, seed), "image/jpeg"),
            "png" => (png(size, seed), "image/png"),
            _ => (pdf(size, seed), "application/pdf"),
        };
        out.push(bytes.len());
        fake.add_attachment(&tx, file, content_type, bytes);
    }
    out
}
