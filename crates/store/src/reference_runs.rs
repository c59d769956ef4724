//! A new file's reference hashes sorted in bounded memory, and what the walk over them in hash
//! order keeps: the hashes the file shares with itself or with the stored references.
//!
//! An import pushes (hash, source line) for every posting. Up to `run_pairs` pairs are held in
//! memory; a full run is sorted and written to a temporary file. At commit the runs are merged
//! back in order of (hash, line), so equal hashes come out side by side whatever the file's
//! size, and the stored references (each import's sorted index) are walked beside them once.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// Pairs held in memory before a sorted run is written out: 4 MB. Each full run is sorted as
/// the import goes, so commit sorts at most this many.
pub(crate) const RUN_PAIRS: usize = 1 << 18;

/// A posting's reference hash and its line in the file.
pub(crate) type Pair = (u64, i64);

const PAIR_BYTES: usize = 16;

/// Sorted runs of (hash, line), spilled to temporary files beyond `run_pairs`.
pub(crate) struct RunSorter {
    run_pairs: usize,
    current: Vec<Pair>,
    spilled: Vec<File>,
    len: u64,
}

impl RunSorter {
    pub(crate) fn new(run_pairs: usize) -> RunSorter {
        RunSorter {
            run_pairs: run_pairs.max(1),
            current: Vec::new(),
            spilled: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, pair: Pair) -> io::Result<()> {
        if self.current.capacity() == 0 {
            self.current.reserve_exact(self.run_pairs.min(1 << 14));
        }
        self.current.push(pair);
        self.len += 1;
        if self.current.len() >= self.run_pairs {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.current.sort_unstable();
        // Deleted by the system when closed, also if the process dies.
        let mut file = tempfile::tempfile()?;
        let mut out = BufWriter::with_capacity(1 << 16, &mut file);
        for (hash, line) in &self.current {
            out.write_all(&hash.to_le_bytes())?;
            out.write_all(&line.to_le_bytes())?;
        }
        out.flush()?;
        drop(out);
        self.spilled.push(file);
        // Keep the allocation: the next run fills it again.
        self.current.clear();
        Ok(())
    }

    /// Pairs pushed so far.
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.len
    }

    /// Runs written to temporary files so far.
    #[cfg(test)]
    fn spilled_runs(&self) -> usize {
        self.spilled.len()
    }

    /// Every pair pushed, in order of hash then line. Can be called again to walk them again.
    pub(crate) fn sorted(&mut self) -> io::Result<SortedPairs<'_>> {
        self.current.sort_unstable();
        let mut runs = Vec::with_capacity(self.spilled.len());
        for file in &mut self.spilled {
            file.seek(SeekFrom::Start(0))?;
            runs.push(BufReader::with_capacity(1 << 16, file));
        }
        let mut sorted = SortedPairs {
            memory: &self.current,
            next_in_memory: 0,
            runs,
            heads: BinaryHeap::new(),
        };
        if !sorted.runs.is_empty() {
            for i in 0..sorted.runs.len() {
                if let Some(pair) = read_pair(&mut sorted.runs[i])? {
                    sorted.heads.push(Reverse((pair, i)));
                }
            }
            if let Some(&pair) = sorted.memory.first() {
                sorted.next_in_memory = 1;
                sorted.heads.push(Reverse((pair, usize::MAX)));
            }
        }
        Ok(sorted)
    }
}

fn read_pair(run: &mut impl Read) -> io::Result<Option<Pair>> {
    let mut bytes = [0u8; PAIR_BYTES];
    match run.read_exact(&mut bytes) {
        Ok(()) => Ok(Some((
            u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
            i64::from_le_bytes(bytes[8..].try_into().expect("8 bytes")),
        ))),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// The merge of a [`RunSorter`]'s runs.
pub(crate) struct SortedPairs<'a> {
    memory: &'a [Pair],
    next_in_memory: usize,
    runs: Vec<BufReader<&'a mut File>>,
    /// The next pair of each run (`usize::MAX`: the one in memory); empty when nothing spilled.
    heads: BinaryHeap<Reverse<(Pair, usize)>>,
}

impl Iterator for SortedPairs<'_> {
    type Item = io::Result<Pair>;

    fn next(&mut self) -> Option<io::Result<Pair>> {
        if self.runs.is_empty() {
            let pair = self.memory.get(self.next_in_memory).copied()?;
            self.next_in_memory += 1;
            return Some(Ok(pair));
        }
        let Reverse((pair, run)) = self.heads.pop()?;
        let next = if run == usize::MAX {
            let next = self.memory.get(self.next_in_memory).copied();
            self.next_in_memory += 1;
            Ok(next)
        } else {
            read_pair(&mut self.runs[run])
        };
        match next {
            Ok(Some(next)) => self.heads.push(Reverse((next, run))),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        Some(Ok(pair))
    }
}

/// The lines of the file with one hash, as the sorted pairs give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) hash: u64,
    pub(crate) count: u64,
    pub(crate) first_line: i64,
    pub(crate) second_line: Option<i64>,
}

/// Groups sorted pairs by hash.
pub(crate) struct Groups<I: Iterator<Item = io::Result<Pair>>> {
    pairs: std::iter::Peekable<I>,
}

impl<I: Iterator<Item = io::Result<Pair>>> Groups<I> {
    pub(crate) fn new(pairs: I) -> Self {
        Groups {
            pairs: pairs.peekable(),
        }
    }

    pub(crate) fn next_group(&mut self) -> io::Result<Option<Group>> {
        let Some((hash, first_line)) = self.pairs.next().transpose()? else {
            return Ok(None);
        };
        let mut group = Group {
            hash,
            count: 1,
            first_line,
            second_line: None,
        };
        while let Some(Ok((h, line))) = self.pairs.peek() {
            if *h != hash {
                break;
            }
            group.second_line.get_or_insert(*line);
            group.count += 1;
            self.pairs.next();
        }
        // An error waiting in the peeked slot comes out on the next call.
        Ok(Some(group))
    }
}

/// A hash the new file shares with the stored references, or between two of its lines: a
/// repeat, or two references with the same hash, which only the references themselves tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) hash: u64,
    pub(crate) first_line: i64,
    pub(crate) second_line: Option<i64>,
    pub(crate) stored: bool,
}

impl Candidate {
    /// From a group, if it is one: the stored references have its hash, or it has two lines.
    pub(crate) fn of(group: &Group, stored: bool) -> Option<Candidate> {
        (stored || group.second_line.is_some()).then_some(Candidate {
            hash: group.hash,
            first_line: group.first_line,
            second_line: group.second_line,
            stored,
        })
    }

    /// The earliest line that is a repeat if this hash turns out to be one: the first line
    /// when the stored references have the hash, else the second. No two candidates share it
    /// (a line has one hash), so it orders them.
    pub(crate) fn earliest_line(&self) -> i64 {
        if self.stored {
            self.first_line
        } else {
            self.second_line.unwrap_or(self.first_line)
        }
    }
}

struct ByEarliestLine(Candidate);

impl PartialEq for ByEarliestLine {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ByEarliestLine {}

impl PartialOrd for ByEarliestLine {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByEarliestLine {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0.earliest_line(), self.0.hash).cmp(&(other.0.earliest_line(), other.0.hash))
    }
}

/// The `cap` candidates with the earliest lines after `after`: a file that repeats a million
/// references (the same extract again with one line changed) is reported from its first
/// repeat without holding the rest.
pub(crate) struct Candidates {
    cap: usize,
    after: Option<i64>,
    kept: BinaryHeap<ByEarliestLine>,
    /// Candidates seen beyond `after`, kept or not.
    pub(crate) seen: u64,
}

impl Candidates {
    pub(crate) fn new(cap: usize, after: Option<i64>) -> Candidates {
        Candidates {
            cap: cap.max(1),
            after,
            kept: BinaryHeap::new(),
            seen: 0,
        }
    }

    pub(crate) fn offer(&mut self, candidate: Candidate) {
        if self
            .after
            .is_some_and(|after| candidate.earliest_line() <= after)
        {
            return;
        }
        self.seen += 1;
        let item = ByEarliestLine(candidate);
        if self.kept.len() < self.cap {
            self.kept.push(item);
        } else if self.kept.peek().is_some_and(|last| item < *last) {
            self.kept.pop();
            self.kept.push(item);
        }
    }

    /// The kept candidates, earliest first, and whether some were left out (all later).
    pub(crate) fn into_sorted(self) -> (Vec<Candidate>, bool) {
        let left_out = self.seen > self.kept.len() as u64;
        let sorted = self
            .kept
            .into_sorted_vec()
            .into_iter()
            .map(|c| c.0)
            .collect();
        (sorted, left_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    /// The merge walk over sorted pairs and a sorted stored list, as the import runs it.
    fn candidates_of(sorter: &mut RunSorter, stored: &[u64], cap: usize) -> Vec<Candidate> {
        let mut groups = Groups::new(sorter.sorted().unwrap());
        let mut stored = stored.iter().copied().peekable();
        let mut found = Candidates::new(cap, None);
        while let Some(group) = groups.next_group().unwrap() {
            while stored.next_if(|&h| h < group.hash).is_some() {}
            let hit = stored.peek() == Some(&group.hash);
            if let Some(c) = Candidate::of(&group, hit) {
                found.offer(c);
            }
        }
        found.into_sorted().0
    }

    /// The same answer from a plain in-memory map of hash to lines.
    fn candidates_in_memory(pairs: &[Pair], stored: &[u64]) -> Vec<Candidate> {
        let mut lines: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
        for &(h, line) in pairs {
            lines.entry(h).or_default().push(line);
        }
        let stored: std::collections::HashSet<u64> = stored.iter().copied().collect();
        let mut out: Vec<Candidate> = lines
            .into_iter()
            .filter_map(|(hash, mut lines)| {
                lines.sort_unstable();
                let group = Group {
                    hash,
                    count: lines.len() as u64,
                    first_line: lines[0],
                    second_line: lines.get(1).copied(),
                };
                Candidate::of(&group, stored.contains(&hash))
            })
            .collect();
        out.sort_by_key(|c| c.earliest_line());
        out
    }

    /// A small pseudo-random hash, so that repeats (and stored hits) are common.
    fn mix(i: u64, modulus: u64) -> u64 {
        // splitmix64's finaliser.
        let mut z = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % modulus
    }

    #[test]
    fn spilled_runs_merge_to_the_same_answer_as_a_set_in_memory() {
        for (n, modulus, run_pairs) in [
            (0, 10, 3),
            (1, 10, 1),
            (1_000, 5_000, 7),
            (10_000, 1 << 40, 64),
        ] {
            let pairs: Vec<Pair> = (0..n).map(|i| (mix(i, modulus), i as i64 + 2)).collect();
            let mut stored: Vec<u64> = (0..n / 3).map(|i| mix(i + 1_000_003, modulus)).collect();
            stored.sort_unstable();
            let mut sorter = RunSorter::new(run_pairs);
            for &p in &pairs {
                sorter.push(p).unwrap();
            }
            assert_eq!(sorter.len(), n);
            if n > run_pairs as u64 {
                assert!(sorter.spilled_runs() > 1, "it spilled");
            }
            // Every pair comes back once, in order.
            let merged: Vec<Pair> = sorter.sorted().unwrap().map(Result::unwrap).collect();
            let mut expected = pairs.clone();
            expected.sort_unstable();
            assert_eq!(merged, expected);
            // And again: commit may walk the runs twice.
            assert_eq!(
                sorter.sorted().unwrap().count(),
                n as usize,
                "a second walk"
            );
            let want = candidates_in_memory(&pairs, &stored);
            assert_eq!(candidates_of(&mut sorter, &stored, usize::MAX), want);
            if modulus == 5_000 {
                assert!(want.iter().any(|c| c.stored) && want.iter().any(|c| !c.stored));
            }
        }
    }

    #[test]
    fn only_the_earliest_candidates_are_kept() {
        let pairs: Vec<Pair> = (0..2_000u64).map(|i| (mix(i, 300), i as i64 + 2)).collect();
        let mut sorter = RunSorter::new(50);
        for &p in &pairs {
            sorter.push(p).unwrap();
        }
        let all = candidates_in_memory(&pairs, &[]);
        assert!(all.len() > 10);
        assert_eq!(candidates_of(&mut sorter, &[], 10), all[..10]);
        // The next ones, after the last line kept.
        let after = all[9].earliest_line();
        let mut later = Candidates::new(10, Some(after));
        for c in &all {
            later.offer(*c);
        }
        let (kept, left_out) = later.into_sorted();
        assert_eq!(kept, all[10..20]);
        assert_eq!(left_out, all.len() > 20);
    }

    #[test]
    fn a_group_names_its_first_two_lines() {
        let mut sorter = RunSorter::new(2);
        for p in [(5, 9), (7, 3), (5, 4), (5, 30)] {
            sorter.push(p).unwrap();
        }
        let mut groups = Groups::new(sorter.sorted().unwrap());
        let mut seen = HashMap::new();
        while let Some(g) = groups.next_group().unwrap() {
            seen.insert(g.hash, g);
        }
        assert_eq!(
            seen[&5],
            Group {
                hash: 5,
                count: 3,
                first_line: 4,
                second_line: Some(9)
            }
        );
        assert_eq!(seen[&7].second_line, None);
        assert_eq!(Candidate::of(&seen[&7], false), None);
        assert_eq!(Candidate::of(&seen[&7], true).unwrap().earliest_line(), 3);
        assert_eq!(Candidate::of(&seen[&5], false).unwrap().earliest_line(), 9);
    }
}
