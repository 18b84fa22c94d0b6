//! Command-line arguments of `gc` and `fsck`.

use clap::{Args, ValueEnum};
use regstore_registry_layout::fsck::{FsckOptions, Repair};
use regstore_registry_layout::gc::GcOptions;

use crate::commands::GcArgs;

/// `regstore gc`.
#[derive(Debug, Args)]
pub struct Gc {
    /// Print what would be deleted (distribution's lines); delete nothing.
    #[arg(short = 'd', long)]
    pub dry_run: bool,
    /// Also delete manifests no tag points at (children of a tagged index are kept).
    #[arg(short = 'm', long)]
    pub delete_untagged: bool,
    /// Delete nothing modified less than this long before the run started (e.g. 0s, 90m, 24h).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = crate::parse_duration_arg)]
    pub min_age: std::time::Duration,
    /// Listings, reads and deletes running at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Report unparseable manifests and bad links and go on (what they reference may be
    /// deleted) instead of stopping before any delete.
    #[arg(long)]
    pub skip_bad_manifests: bool,
    /// Root of the registry's layout inside the storage.
    #[arg(long, value_name = "PATH", default_value = regstore_registry_layout::DEFAULT_ROOT)]
    pub root: String,
}

impl Gc {
    /// The command's arguments as library options.
    pub fn into_args(self) -> GcArgs {
        GcArgs {
            dry_run: self.dry_run,
            root: self.root,
            options: GcOptions {
                delete_untagged: self.delete_untagged,
                min_age: self.min_age,
                jobs: usize::from(self.jobs),
                skip_bad_manifests: self.skip_bad_manifests,
            },
        }
    }
}

/// What `fsck --repair` may fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RepairKind {
    /// Delete layer and revision links whose blob is missing.
    DanglingLinks,
    /// Delete incomplete uploads older than a week.
    StaleUploads,
}

/// `regstore fsck`.
#[derive(Debug, Args)]
pub struct Fsck {
    /// Read every blob and check that it hashes to its digest.
    #[arg(long)]
    pub verify_digests: bool,
    /// Fix these problems (repeatable or comma-separated); nothing is modified otherwise.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub repair: Vec<RepairKind>,
    /// Reads running at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Root of the registry's layout inside the storage.
    #[arg(default_value = regstore_registry_layout::DEFAULT_ROOT)]
    pub path: String,
}

impl Fsck {
    /// The layout root and library options.
    pub fn into_options(self) -> (String, FsckOptions) {
        let options = FsckOptions {
            verify_digests: self.verify_digests,
            jobs: usize::from(self.jobs),
            repair: Repair {
                dangling_links: self.repair.contains(&RepairKind::DanglingLinks),
                stale_uploads: self.repair.contains(&RepairKind::StaleUploads),
            },
            ..FsckOptions::default()
        };
        (self.path, options)
    }
}
