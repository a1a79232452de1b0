//! Who is who: the engine's index of its customers by id and by `externalId`, read by the
//! inbox to resolve a file's customer without paging the whole account for every file. The
//! engine alone writes it, as customers arrive.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use uuid::Uuid;

#[derive(Debug, Default)]
struct Index {
    /// Every customer and the externalId they have now.
    ids: HashMap<Uuid, Option<Box<str>>>,
    external: HashMap<Box<str>, Uuid>,
}

impl Index {
    /// A changed externalId no longer names its customer: a file for the old one must not
    /// reach them (nor, later, whoever takes that externalId next).
    fn note(&mut self, id: Uuid, external_id: Option<&str>) {
        let old = self.ids.insert(id, external_id.map(Box::from)).flatten();
        if let Some(old) = old.filter(|old| Some(&**old) != external_id)
            && self.external.get(&old) == Some(&id)
        {
            self.external.remove(&old);
        }
        if let Some(external_id) = external_id {
            self.external.insert(external_id.into(), id);
        }
    }
}

/// A shared, cheap-to-clone handle on the index.
#[derive(Debug, Clone, Default)]
pub struct Directory(Arc<RwLock<Index>>);

impl Directory {
    /// Notes a customer (again, if their `externalId` changed).
    pub fn note(&self, id: Uuid, external_id: Option<&str>) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .note(id, external_id);
    }

    /// Notes many customers at once.
    pub fn note_all<'a>(&self, customers: impl Iterator<Item = (Uuid, Option<&'a str>)>) {
        let mut index = self.0.write().unwrap_or_else(|e| e.into_inner());
        for (id, external_id) in customers {
            index.note(id, external_id);
        }
    }

    /// The customer a file names, by id or `externalId`, if the engine knows them.
    pub fn find(&self, customer: &str) -> Option<Uuid> {
        let index = self.0.read().unwrap_or_else(|e| e.into_inner());
        match customer.parse::<Uuid>() {
            Ok(id) => index.ids.contains_key(&id).then_some(id),
            Err(_) => index.external.get(customer).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_are_found_by_id_and_by_external_id_and_strangers_are_not() {
        let directory = Directory::default();
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        directory.note(ada, Some("crm-1"));
        directory.note(bob, None);
        assert_eq!(directory.find("crm-1"), Some(ada));
        assert_eq!(directory.find(&ada.to_string()), Some(ada));
        assert_eq!(directory.find(&bob.to_string()), Some(bob));
        assert_eq!(directory.find("crm-2"), None);
        assert_eq!(directory.find(&Uuid::new_v4().to_string()), None);
        directory.note(bob, Some("crm-2"));
        assert_eq!(directory.find("crm-2"), Some(bob));
    }

    #[test]
    fn a_changed_external_id_no_longer_finds_its_customer() {
        let directory = Directory::default();
        let ada = Uuid::new_v4();
        directory.note(ada, Some("crm-1"));
        directory.note(ada, Some("crm-9"));
        assert_eq!(directory.find("crm-1"), None);
        assert_eq!(directory.find("crm-9"), Some(ada));
        // Someone else took the old one meanwhile: it stays theirs when Ada is noted again.
        let bob = Uuid::new_v4();
        directory.note(bob, Some("crm-1"));
        directory.note(ada, None);
        assert_eq!(directory.find("crm-1"), Some(bob));
        assert_eq!(directory.find("crm-9"), None);
    }
}
