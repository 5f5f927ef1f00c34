//! [`Campaign`]: one message to many envelopes, split into sends SendGrid accepts.
//!
//! The envelopes are cut, in order, into batches of at most 1,000 personalizations (or fewer,
//! [`Campaign::batch_size`]) and at most 1,000 recipients. Batch `i` of campaign `id` always
//! carries the idempotency key derived from `"<id>/<i>"`, so running the same campaign again
//! sends the same keys: with a dedupe store on the client, batches already accepted are not
//! sent twice.
//!
//! Batches go one after another, paced by the client's limiters (the endpoint's window and the
//! configured budget); use [`SendGridClient::with_policy`] to let a call wait for a window that
//! resets later than the default 30 s `max_wait`. The first failure stops the campaign at
//! once, before any later batch is sent, and the [`CampaignReport`] says which batches were
//! accepted and why it stopped (for example [`Error::CreditsExhausted`]). Sequential on
//! purpose: a batch in flight when the campaign stops could not be cancelled without leaving
//! its outcome unknown.

use std::ops::Range;

use ratewise_core::idempotency::IdempotencyKey;
use uuid::Uuid;

use crate::client::SendGridClient;
use crate::mail::{Mail, Personalization};
use crate::send::{Accepted, Error};
use crate::validate::{MAX_PERSONALIZATIONS, MAX_RECIPIENTS};

/// The namespace of campaign batch keys (UUID v5 of `"<campaign id>/<batch>"`).
pub const CAMPAIGN_NAMESPACE: Uuid = Uuid::from_u128(0x5d0c_9a61_3f2e_4c7b_9f0e_7a1b_2c3d_4e5f);

/// One batch of a campaign: which envelopes, and the key it is sent with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Batch {
    /// The batch's position, from 0.
    pub index: usize,
    /// The envelopes it carries (positions in the campaign's list).
    pub envelopes: Range<usize>,
    /// The addresses it reaches.
    pub recipients: usize,
    /// Its idempotency key (derived from the campaign id and `index`).
    pub idempotency_key: IdempotencyKey,
}

/// What a campaign run did.
#[derive(Debug)]
#[non_exhaustive]
pub struct CampaignReport {
    /// How many batches the campaign has.
    pub batches: usize,
    /// The batches SendGrid accepted (or the dedupe store recorded as sent), in order.
    pub accepted: Vec<(Batch, Accepted)>,
    /// The batch that failed and why; no later batch was sent. `None` when all were accepted.
    pub stopped: Option<(Batch, Error)>,
}

impl CampaignReport {
    /// True when every batch was accepted.
    pub fn is_complete(&self) -> bool {
        self.stopped.is_none() && self.accepted.len() == self.batches
    }

    /// The addresses reached by accepted batches.
    pub fn recipients_accepted(&self) -> usize {
        self.accepted
            .iter()
            .fold(0, |n, (batch, _)| n.saturating_add(batch.recipients))
    }

    /// The positions of the accepted batches.
    pub fn accepted_batches(&self) -> Vec<usize> {
        self.accepted.iter().map(|(batch, _)| batch.index).collect()
    }

    /// The error that stopped the campaign, if any.
    pub fn error(&self) -> Option<&Error> {
        self.stopped.as_ref().map(|(_, error)| error)
    }
}

/// A message sent to many envelopes, batch by batch. Built by [`SendGridClient::campaign`].
#[derive(Clone)]
#[must_use = "a campaign does nothing until run"]
pub struct Campaign {
    client: SendGridClient,
    id: String,
    template: Mail,
    recipients: Vec<Personalization>,
    batch_size: usize,
    start_at: usize,
}

impl std::fmt::Debug for Campaign {
    /// Addresses and content are left out: they are personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Campaign")
            .field("id", &self.id)
            .field("envelopes", &self.recipients.len())
            .field("batch_size", &self.batch_size)
            .field("start_at", &self.start_at)
            .finish_non_exhaustive()
    }
}

impl Campaign {
    pub(crate) fn new(
        client: SendGridClient,
        id: String,
        template: Mail,
        recipients: Vec<Personalization>,
    ) -> Self {
        Self {
            client,
            id,
            template,
            recipients,
            batch_size: MAX_PERSONALIZATIONS,
            start_at: 0,
        }
    }

    /// At most `size` envelopes per batch (1 to 1,000; default 1,000).
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.clamp(1, MAX_PERSONALIZATIONS);
        self
    }

    /// Skips the batches before `index` (resuming a run that stopped there).
    pub fn start_at(mut self, index: usize) -> Self {
        self.start_at = index;
        self
    }

    /// The batches, in order: envelopes cut at `batch_size` envelopes or 1,000 recipients.
    pub fn batches(&self) -> Vec<Batch> {
        let mut batches = Vec::new();
        let mut start = 0;
        let mut recipients = 0usize;
        for (i, envelope) in self.recipients.iter().enumerate() {
            let n = envelope.recipients();
            let full =
                i - start >= self.batch_size || recipients.saturating_add(n) > MAX_RECIPIENTS;
            if full && i > start {
                batches.push(self.batch(batches.len(), start..i, recipients));
                start = i;
                recipients = 0;
            }
            recipients = recipients.saturating_add(n);
        }
        if start < self.recipients.len() {
            batches.push(self.batch(batches.len(), start..self.recipients.len(), recipients));
        }
        batches
    }

    fn batch(&self, index: usize, envelopes: Range<usize>, recipients: usize) -> Batch {
        Batch {
            index,
            envelopes,
            recipients,
            idempotency_key: IdempotencyKey::derive(
                &CAMPAIGN_NAMESPACE,
                format!("{}/{index}", self.id),
            ),
        }
    }

    /// Sends every batch, in order, until one fails.
    pub async fn run(self) -> CampaignReport {
        self.run_with_progress(|_, _| {}).await
    }

    /// Sends every batch, in order, until one fails, calling `progress` after each send.
    pub async fn run_with_progress(
        self,
        mut progress: impl FnMut(&Batch, &Result<Accepted, Error>),
    ) -> CampaignReport {
        let batches = self.batches();
        let mut report = CampaignReport {
            batches: batches.len(),
            accepted: Vec::new(),
            stopped: None,
        };
        for batch in batches.into_iter().skip(self.start_at) {
            let envelopes = self
                .recipients
                .get(batch.envelopes.clone())
                .unwrap_or_default()
                .to_vec();
            let mail = self.template.clone().personalizations(envelopes);
            let result = self
                .client
                .send_mail(mail)
                .idempotency_key(batch.idempotency_key.clone())
                .send()
                .await;
            progress(&batch, &result);
            match result {
                Ok(accepted) => report.accepted.push((batch, accepted)),
                Err(error) => {
                    report.stopped = Some((batch, error));
                    break;
                }
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Content;

    fn campaign(envelopes: Vec<Personalization>) -> Campaign {
        let client = SendGridClient::new("SG.x").unwrap();
        let template = Mail::new("news@example.com")
            .subject("News")
            .content(Content::text("Hello"));
        client.campaign("spring", template, envelopes)
    }

    fn singles(n: usize) -> Vec<Personalization> {
        (0..n)
            .map(|i| Personalization::new(format!("r{i}@example.com")))
            .collect()
    }

    #[test]
    fn ten_thousand_single_envelopes_make_ten_batches_of_a_thousand() {
        let batches = campaign(singles(10_000)).batches();
        assert_eq!(batches.len(), 10);
        assert!(batches.iter().all(|b| b.recipients == 1_000));
        assert_eq!(batches[3].envelopes, 3_000..4_000);
    }

    #[test]
    fn batches_are_cut_at_a_thousand_recipients_and_at_the_batch_size() {
        let envelopes: Vec<_> = (0..30)
            .map(|i| {
                (1..100).fold(Personalization::new(format!("r{i}@example.com")), |p, j| {
                    p.bcc(format!("r{i}-{j}@example.com"))
                })
            })
            .collect();
        let batches = campaign(envelopes).batches();
        assert_eq!(
            batches.iter().map(|b| b.recipients).collect::<Vec<_>>(),
            vec![1_000, 1_000, 1_000]
        );
        let small = campaign(singles(25)).batch_size(10).batches();
        assert_eq!(
            small
                .iter()
                .map(|b| b.envelopes.clone())
                .collect::<Vec<_>>(),
            vec![0..10, 10..20, 20..25]
        );
    }

    #[test]
    fn batch_keys_are_stable_across_runs_and_distinct_across_batches_and_campaigns() {
        let a = campaign(singles(2_500)).batches();
        let b = campaign(singles(2_500)).batches();
        assert_eq!(a, b);
        assert_ne!(a[0].idempotency_key, a[1].idempotency_key);
        let client = SendGridClient::new("SG.x").unwrap();
        let other = client
            .campaign("autumn", Mail::new("news@example.com"), singles(10))
            .batches();
        assert_ne!(other[0].idempotency_key, a[0].idempotency_key);
    }

    #[test]
    fn an_envelope_over_a_thousand_recipients_is_a_batch_of_its_own() {
        let huge = (0..1_200).fold(Personalization::new("a@example.com"), |p, j| {
            p.bcc(format!("b{j}@example.com"))
        });
        let batches = campaign(vec![
            Personalization::new("x@example.com"),
            huge,
            Personalization::new("y@example.com"),
        ])
        .batches();
        assert_eq!(
            batches
                .iter()
                .map(|b| b.envelopes.clone())
                .collect::<Vec<_>>(),
            vec![0..1, 1..2, 2..3]
        );
        assert!(campaign(Vec::new()).batches().is_empty());
    }
}
