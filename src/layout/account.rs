//! Account folder names: `Main account 4321 3hq8c1vz`.
//!
//! The bank account's name says which account it is; the IBAN's last four tell two
//! accounts of one organisation apart at a glance; the tag of the whole IBAN (of the
//! account's id when it has none) keeps two organisations apart. IBANs and Qonto
//! account ids are unique across organisations, while names ("Compte principal") and
//! IBAN endings collide easily, and so do organisation names: an archive shared by
//! several organisations (an owner with two companies, an accountant with several
//! clients) only stays apart on what identifies the account.

use super::Layout;
use super::names::{self, clean_text, finish_name, short_tag};
use crate::model::{AccountId, BankAccount};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The longest account-name part of a folder name.
const MAX_ACCOUNT_NAME_LEN: usize = 60;

/// How account folders are named; decided once per archive, with the other layout
/// settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountNaming {
    /// `Main account 4321`: the name and the IBAN's last four (a tag of the id when
    /// there is no IBAN). The names of archives made before account tags existed:
    /// unique within one organisation only.
    NameAndIban,
    /// `Main account 4321 3hq8c1vz`: a tag of the account's IBAN (of its id when it
    /// has none) follows, so no two organisations ever share a folder
    /// (`docs/multiple-organisations.md`).
    WithAccountTag,
}

impl AccountNaming {
    /// What a state written before the setting existed was laid out with.
    pub(crate) fn before_tags() -> Self {
        Self::NameAndIban
    }
}

impl Layout {
    /// The folder name of one account: its name, then the last four characters of
    /// its IBAN (or a tag of its id when it has none), then, with
    /// [`AccountNaming::WithAccountTag`], a tag of the whole IBAN:
    /// `Main account 4321 3hq8c1vz`.
    pub fn account_folder(&self, account: &BankAccount) -> String {
        let budget = self.account_budget();
        let suffix = self.account_suffix(account);
        let room = match self.settings.account_naming {
            // As these names always were: an archive keeps its folder names.
            AccountNaming::NameAndIban => MAX_ACCOUNT_NAME_LEN,
            // The tag is what keeps organisations apart: the account's name gives way first.
            AccountNaming::WithAccountTag => budget
                .saturating_sub(names::utf16_len(&suffix) + 1)
                .min(MAX_ACCOUNT_NAME_LEN),
        };
        let name = clean_text(&account.name);
        let name = names::truncate_utf16(&name, room).trim_end();
        let joined = if name.is_empty() {
            format!("Account {suffix}")
        } else {
            format!("{name} {suffix}")
        };
        finish_name(&joined, budget, "Account")
    }

    /// The folder names of all `accounts`, unique case-insensitively: when two
    /// accounts would share a name (same name and same IBAN ending, in an archive
    /// named without account tags), each of them gets its id's tag appended.
    pub fn account_folders<'a>(
        &self,
        accounts: impl IntoIterator<Item = &'a BankAccount>,
    ) -> BTreeMap<AccountId, String> {
        let named: Vec<(&BankAccount, String)> = accounts
            .into_iter()
            .map(|a| (a, self.account_folder(a)))
            .collect();
        let mut uses: HashMap<String, usize> = HashMap::new();
        for (_, name) in &named {
            *uses.entry(name.to_lowercase()).or_default() += 1;
        }
        named
            .into_iter()
            .map(|(account, name)| {
                let name = if uses[&name.to_lowercase()] > 1 {
                    let tag = short_tag(account.id.as_str());
                    let room = self.account_budget().saturating_sub(tag.len() + 1);
                    let base = names::truncate_utf16(&name, room).trim_end();
                    finish_name(&format!("{base} {tag}"), self.account_budget(), "Account")
                } else {
                    name
                };
                (account.id.clone(), name)
            })
            .collect()
    }

    /// What follows the account's name: `4321`, `4321 3hq8c1vz`, or the id's tag alone
    /// for an account without an IBAN (it already names the account uniquely).
    fn account_suffix(&self, account: &BankAccount) -> String {
        let iban: String = account
            .iban
            .as_deref()
            .unwrap_or("")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if iban.len() < 4 {
            return short_tag(account.id.as_str());
        }
        let four = &iban[iban.len() - 4..];
        match self.settings.account_naming {
            AccountNaming::NameAndIban => four.to_owned(),
            // Of the IBAN, unique to the account like its id, and known even when Qonto
            // gives no id (the account is then known by its IBAN until it does): the
            // folder keeps its name when the id shows up.
            AccountNaming::WithAccountTag => format!("{four} {}", short_tag(&iban)),
        }
    }

    fn account_budget(&self) -> usize {
        // Keep room for the period folder and a file name of ~100 units below the account folder.
        let for_children = 8 + 100;
        self.limits
            .max_path_len
            .saturating_sub(1 + self.limits.root_prefix_len + for_children)
            .clamp(1, self.limits.max_name_len)
    }
}
