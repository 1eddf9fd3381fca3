//! The "fenced resource" of the split-brain tests: a store that, like a storage system guarding
//! itself with fencing tokens, refuses any write stamped with a token lower than the highest it
//! has accepted. A paused or partitioned old master wakes up still believing it holds the VIP;
//! its late write carries its old token and bounces.

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The token the write carried.
    pub token: u64,
    /// The highest token accepted so far.
    pub highest: u64,
}

/// A single value guarded by fencing tokens.
#[derive(Debug, Default, Clone)]
pub struct FencedStore {
    highest: Option<u64>,
    value: Option<String>,
    refused: usize,
}

impl FencedStore {
    /// Writes `value` under `token` unless a larger token was accepted before. Equal tokens
    /// are the same owner writing again.
    pub fn write(&mut self, token: u64, value: &str) -> Result<(), Refused> {
        if let Some(highest) = self.highest
            && token < highest
        {
            self.refused += 1;
            return Err(Refused { token, highest });
        }
        self.highest = Some(token);
        self.value = Some(value.to_owned());
        Ok(())
    }

    /// The last accepted value.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// How many writes were refused.
    pub fn refused(&self) -> usize {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_token_is_refused_and_changes_nothing() {
        let mut store = FencedStore::default();
        store.write(33, "lb1").expect("first owner");
        store.write(33, "lb1 again").expect("same owner");
        store.write(50, "lb2").expect("successor");
        assert_eq!(
            store.write(33, "lb1, late"),
            Err(Refused {
                token: 33,
                highest: 50
            })
        );
        assert_eq!(store.value(), Some("lb2"));
        assert_eq!(store.refused(), 1);
    }
}
