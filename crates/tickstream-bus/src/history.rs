//! The read side of history: a channel's capped stream and the epoch that says whether it is still the same history.
//!
//! Every `ticks:` and `trades:` publication is appended, in the same atomic
//! step as its PUBLISH, to `history:{channel}` with entry id `{seq}-0`, so the
//! stream is ordered by seq and a range read by seq is a range read by id.
//! `tickstream:epoch` is a random value created once per Redis data set: a
//! Redis that restarted empty gets a new one, which is how a client tells
//! "history continues" from "history restarted" (its old seqs mean nothing).

use redis::Value;
use tickstream_model::Channel;

use crate::keys;
use crate::store::{new_epoch, BusError, Redis};

/// One read of a channel's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The data set's epoch at the time of the read.
    pub epoch: String,
    /// `(seq, payload JSON)` in seq order, after the requested seq.
    pub items: Vec<(u64, Vec<u8>)>,
    /// The oldest seq the stream still holds (`None`: empty or missing stream).
    pub oldest: Option<u64>,
    /// The newest seq the stream holds.
    pub newest: Option<u64>,
}

impl HistoryPage {
    /// Whether the stream still reaches back to the item right after `since` (nothing was trimmed in between).
    ///
    /// True when the oldest kept entry is at or before `since + 1`, or when
    /// nothing newer than `since` was ever written (the client is up to date).
    pub fn reaches(&self, since: u64) -> bool {
        match (self.oldest, self.newest) {
            (Some(oldest), Some(newest)) => oldest <= since.saturating_add(1) || newest <= since,
            _ => false,
        }
    }
}

/// A pipeline that starts by reading the epoch, creating it first if no producer has
/// (`SET NX` of a fresh value, then `GET`): its first two replies are `(_, epoch)`.
fn pipe_with_epoch() -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(keys::EPOCH_KEY)
        .arg(new_epoch())
        .arg("NX")
        .cmd("GET")
        .arg(keys::EPOCH_KEY);
    pipe
}

impl Redis {
    /// The epoch of this Redis data set, created now if no producer has created it yet.
    pub async fn epoch(&self) -> Result<String, BusError> {
        let mut c = self.conn();
        let pipe = pipe_with_epoch();
        self.run_op(async move {
            let (_, epoch): (Value, String) = pipe.query_async(&mut c).await?;
            Ok(epoch)
        })
        .await
    }

    /// Up to `limit` items of `channel` with seq greater than `since`, with the epoch and the stream's bounds, in one round trip.
    pub async fn history(
        &self,
        channel: &Channel,
        since: u64,
        limit: usize,
    ) -> Result<HistoryPage, BusError> {
        let key = self.naming().name(&keys::history_key(channel.as_str()));
        // The stream's bounds and the range after `since`, in one round trip.
        let mut ranges = redis::pipe();
        ranges
            .cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .cmd("XREVRANGE")
            .arg(&key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .cmd("XRANGE")
            .arg(&key)
            .arg(format!("{}-0", since.saturating_add(1)))
            .arg("+")
            .arg("COUNT")
            .arg(limit.max(1));
        let mut c = self.conn();
        let (epoch, first, last, range): (String, Value, Value, Value) = if self.is_cluster() {
            // The epoch lives in another slot than the stream: read it first, on its own
            // (an epoch read before the range is still the range's epoch).
            let epoch = self.epoch().await?;
            let (first, last, range) = self
                .run_op(async move { ranges.query_async(&mut c).await })
                .await?;
            (epoch, first, last, range)
        } else {
            let mut pipe = pipe_with_epoch();
            for cmd in ranges.cmd_iter() {
                pipe.add_command(cmd.clone());
            }
            self.run_op(async move {
                let (_, epoch, first, last, range): (Value, String, Value, Value, Value) =
                    pipe.query_async(&mut c).await?;
                Ok((epoch, first, last, range))
            })
            .await?
        };
        let corrupt = |reason: String| BusError::Corrupt {
            key: keys::history_key(channel.as_str()),
            reason,
        };
        let mut items = entries(range).map_err(corrupt)?;
        if limit == 0 {
            items.clear();
        }
        let oldest = entries(first).map_err(corrupt)?.first().map(|(s, _)| *s);
        let newest = entries(last).map_err(corrupt)?.first().map(|(s, _)| *s);
        Ok(HistoryPage {
            epoch,
            items,
            oldest,
            newest,
        })
    }
}

/// Decodes an XRANGE reply `[[id, [field, value, ...]], ...]` into `(seq, d)` pairs.
pub(crate) fn entries(reply: Value) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let list = match reply {
        Value::Array(list) => list,
        Value::Nil => return Ok(Vec::new()),
        other => return Err(format!("XRANGE reply is not a list: {other:?}")),
    };
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        let Value::Array(mut parts) = entry else {
            return Err("stream entry is not [id, fields]".to_owned());
        };
        if parts.len() != 2 {
            return Err("stream entry is not [id, fields]".to_owned());
        }
        let fields = parts.pop();
        let id = parts.pop();
        let id = match id {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
            Some(Value::SimpleString(s)) => s,
            other => return Err(format!("stream id {other:?}")),
        };
        let seq = id
            .split_once('-')
            .map_or(id.as_str(), |(ms, _)| ms)
            .parse::<u64>()
            .map_err(|e| format!("stream id {id:?}: {e}"))?;
        let Some(Value::Array(fields)) = fields else {
            return Err(format!("fields of {id} are not a list"));
        };
        let data = fields.chunks(2).find_map(|pair| match pair {
            [Value::BulkString(k), Value::BulkString(v)] if k.as_slice() == b"d" => Some(v.clone()),
            _ => None,
        });
        match data {
            Some(d) => out.push((seq, d)),
            None => return Err(format!("entry {id} has no `d` field")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(oldest: Option<u64>, newest: Option<u64>) -> HistoryPage {
        HistoryPage {
            epoch: "e".to_owned(),
            items: Vec::new(),
            oldest,
            newest,
        }
    }

    #[test]
    fn reaches_tells_a_trimmed_gap_from_a_continuous_history() {
        assert!(page(Some(5), Some(9)).reaches(4), "next item kept");
        assert!(page(Some(5), Some(9)).reaches(7));
        assert!(!page(Some(5), Some(9)).reaches(3), "seq 4 was trimmed");
        assert!(page(Some(5), Some(9)).reaches(9), "up to date");
        assert!(
            page(Some(5), Some(9)).reaches(12),
            "ahead: nothing missed here"
        );
        assert!(!page(None, None).reaches(0), "no history at all");
    }

    #[test]
    fn entries_decode_and_refuse_foreign_shapes() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let entry = |id: &str, d: &str| {
            Value::Array(vec![bulk(id), Value::Array(vec![bulk("d"), bulk(d)])])
        };
        let got = entries(Value::Array(vec![entry("7-0", "{}"), entry("9-0", "[1]")])).unwrap();
        assert_eq!(got, vec![(7, b"{}".to_vec()), (9, b"[1]".to_vec())]);
        assert!(entries(Value::Array(vec![entry("x-0", "{}")])).is_err());
        assert!(entries(Value::Array(vec![Value::Array(vec![
            bulk("1-0"),
            Value::Array(vec![bulk("other"), bulk("v")])
        ])]))
        .is_err());
        assert_eq!(entries(Value::Nil).unwrap(), Vec::new());
    }
}
