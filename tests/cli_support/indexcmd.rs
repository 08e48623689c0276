//! The accountant's index in the command's process tests. A new archive has indexes on;
//! the tests that count the receipts in the archive start their home with them off.

use std::path::Path;

/// Stores "indexes off" in `home`, as `sync --index off` would: the archive then holds
/// receipts only.
pub fn without_indexes(home: &Path) {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(
        home.join("accountant-index.json"),
        "{\"enabled\": false, \"separator\": \"comma\"}\n",
    )
    .unwrap();
}

/// A new home whose archive holds receipts only.
pub fn home_without_indexes() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    without_indexes(home.path());
    home
}
