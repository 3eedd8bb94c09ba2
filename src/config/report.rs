//! `[report]` in prodiff.toml and where reports link to: the ticket URL template
//! (`ticket_url`, checked when the config is read so a bad template is a config error
//! naming its line), and the hosting service the `origin` remote names (GitHub, GitLab,
//! Bitbucket; ssh and https forms) for commit and pull-request links. Pure string work: no
//! network, no git. A remote that is not one of the known services gives no links rather
//! than guessed ones, and no URL made here ever carries the remote's userinfo.

/// `[report] ticket_url`: a URL with a `{key}` placeholder (`https://jira.example.com/browse/{key}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketTemplate(String);

impl TicketTemplate {
    /// Checks the template: an http(s) URL with a `{key}` placeholder and nothing that
    /// cannot stand in a URL. The error says what is wrong, for the config error.
    pub fn parse(template: &str) -> Result<TicketTemplate, String> {
        let example = "for example \"https://jira.example.com/browse/{key}\"";
        if !(template.starts_with("https://") || template.starts_with("http://")) {
            return Err(format!("{template:?} is not an http:// or https:// URL ({example})"));
        }
        if !template.contains("{key}") {
            return Err(format!("{template:?} has no {{key}} placeholder ({example})"));
        }
        if let Some(c) = template.chars().find(|c| c.is_whitespace() || c.is_control() || "\"'<>`\\".contains(*c)) {
            return Err(format!("{template:?} contains {c:?}, which cannot stand in a URL"));
        }
        Ok(TicketTemplate(template.to_string()))
    }

    /// The URL of ticket `key`, percent-encoded into the placeholder.
    pub fn url(&self, key: &str) -> String {
        self.0.replace("{key}", &percent_encode(key))
    }
}

/// RFC 3986 unreserved characters stay, everything else is `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The hosting services whose commit and pull-request URLs are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    GitHub,
    GitLab,
    Bitbucket,
}

/// A repository on a hosting service: `https://github.com/acme/shop`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hosting {
    pub service: Service,
    /// `https://HOST/OWNER/REPO`, without `.git`, userinfo or port.
    pub base: String,
}

impl Hosting {
    /// The repository a remote URL names, when it is on a known service:
    /// `git@github.com:acme/shop.git`, `ssh://git@gitlab.com:22/g/sub/p.git`,
    /// `https://user:token@bitbucket.org/team/repo`.
    pub fn from_remote(url: &str) -> Option<Hosting> {
        let url = url.trim();
        let (host, path) = match url.split_once("://") {
            Some((_, rest)) => {
                let (authority, path) = rest.split_once('/')?;
                (authority.rsplit_once('@').map_or(authority, |(_, h)| h), path)
            }
            // scp-like: `[user@]host:path`
            None => {
                let (authority, path) = url.split_once(':')?;
                (authority.rsplit_once('@').map_or(authority, |(_, h)| h), path)
            }
        };
        let host = host.split(':').next()?.to_ascii_lowercase();
        let service = match host.as_str() {
            "github.com" | "www.github.com" => Service::GitHub,
            "bitbucket.org" | "www.bitbucket.org" => Service::Bitbucket,
            h if h == "gitlab.com" || h.starts_with("gitlab.") => Service::GitLab,
            _ => return None,
        };
        let path = path.trim_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
        let segments = path.split('/').filter(|s| !s.is_empty()).count();
        let well_formed = !path.contains("//") && !path.split('/').any(|s| s == "." || s == "..");
        if segments < 2 || !path.chars().all(safe) || !well_formed || !host.chars().all(|c| safe(c) && c != '/') {
            return None;
        }
        Some(Hosting { service, base: format!("https://{host}/{path}") })
    }

    /// The page of one commit.
    pub fn commit(&self, sha: &str) -> String {
        match self.service {
            Service::GitHub => format!("{}/commit/{sha}", self.base),
            Service::GitLab => format!("{}/-/commit/{sha}", self.base),
            Service::Bitbucket => format!("{}/commits/{sha}", self.base),
        }
    }

    /// The page of pull (merge) request `n`.
    pub fn change(&self, n: u32) -> String {
        match self.service {
            Service::GitHub => format!("{}/pull/{n}", self.base),
            Service::GitLab => format!("{}/-/merge_requests/{n}", self.base),
            Service::Bitbucket => format!("{}/pull-requests/{n}", self.base),
        }
    }

    /// The page of issue `n` (`#42` in a message; GitHub sends a pull request's number on
    /// to the pull request).
    pub fn issue(&self, n: u32) -> String {
        match self.service {
            Service::GitHub | Service::Bitbucket => format!("{}/issues/{n}", self.base),
            Service::GitLab => format!("{}/-/issues/{n}", self.base),
        }
    }

    /// The pull or merge request numbers a commit subject names, the way each service
    /// writes them: `Title (#88)` and `Merge pull request #88` on GitHub, `(!88)` and
    /// `See merge request g/p!88` on GitLab, `(pull request #88)` on Bitbucket.
    pub fn changes_in(&self, subject: &str) -> Vec<u32> {
        let marker = match self.service {
            Service::GitLab => '!',
            Service::GitHub | Service::Bitbucket => '#',
        };
        let mut found = Vec::new();
        let mut rest = subject;
        while let Some(at) = rest.find(marker) {
            let before = &rest[..at];
            let digits: String = rest[at + 1..].chars().take_while(|c| c.is_ascii_digit()).collect();
            rest = &rest[at + 1..];
            let after = &rest[digits.len()..];
            let wrapped = before.ends_with('(') && after.starts_with(')');
            let spelled = match self.service {
                Service::GitHub => before.ends_with("Merge pull request "),
                Service::GitLab => before.ends_with("merge request ") || before.contains("merge request "),
                Service::Bitbucket => before.ends_with("(pull request "),
            };
            if let Ok(n) = digits.parse::<u32>() {
                if (wrapped || spelled) && !found.contains(&n) {
                    found.push(n);
                }
            }
        }
        found
    }
}

/// What a report can link to: commits and pull requests on the hosting service, tickets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Links {
    pub hosting: Option<Hosting>,
    pub tickets: Option<TicketTemplate>,
}

impl Links {
    /// From the `origin` remote's URL (when there is one) and the configured template.
    pub fn new(origin: Option<&str>, tickets: Option<TicketTemplate>) -> Links {
        Links { hosting: origin.and_then(Hosting::from_remote), tickets }
    }

    pub fn commit(&self, sha: &str) -> Option<String> {
        self.hosting.as_ref().map(|h| h.commit(sha))
    }

    /// A ticket's page: `#42` on the hosting service when there is one, any key through
    /// the template otherwise.
    pub fn ticket(&self, key: &str) -> Option<String> {
        if let (Some(h), Some(n)) = (&self.hosting, key.strip_prefix('#').and_then(|n| n.parse::<u32>().ok())) {
            return Some(h.issue(n));
        }
        self.tickets.as_ref().map(|t| t.url(key))
    }

    /// The pull requests a commit subject names, as (`#88` or `!88`, URL).
    pub fn changes(&self, subject: &str) -> Vec<(String, String)> {
        let Some(h) = &self.hosting else { return Vec::new() };
        let mark = if h.service == Service::GitLab { '!' } else { '#' };
        h.changes_in(subject).into_iter().map(|n| (format!("{mark}{n}"), h.change(n))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_in_ssh_and_https_forms_name_the_repository() {
        let cases = [
            ("git@github.com:acme/shop.git", "https://github.com/acme/shop", Service::GitHub),
            ("ssh://git@github.com/acme/shop.git", "https://github.com/acme/shop", Service::GitHub),
            ("https://github.com/acme/shop", "https://github.com/acme/shop", Service::GitHub),
            (
                "https://x-access-token:s3cret@github.com/acme/shop.git/",
                "https://github.com/acme/shop",
                Service::GitHub,
            ),
            ("ssh://git@gitlab.com:22/group/sub/proj.git", "https://gitlab.com/group/sub/proj", Service::GitLab),
            ("https://gitlab.example.com/g/p.git", "https://gitlab.example.com/g/p", Service::GitLab),
            ("git@bitbucket.org:team/repo.git", "https://bitbucket.org/team/repo", Service::Bitbucket),
            ("https://me@bitbucket.org/team/repo.git", "https://bitbucket.org/team/repo", Service::Bitbucket),
        ];
        for (url, base, service) in cases {
            assert_eq!(Hosting::from_remote(url), Some(Hosting { service, base: base.into() }), "{url}");
        }
    }

    #[test]
    fn unknown_or_odd_remotes_give_no_links() {
        for url in [
            "/srv/git/shop.git",
            "https://git.example.com/acme/shop",
            "https://github.com/acme",
            "https://github.com/acme/\"><script>",
            "https://github.com/acme/../x",
            "file:///tmp/repo",
        ] {
            assert_eq!(Hosting::from_remote(url), None, "{url}");
        }
    }

    #[test]
    fn commit_change_and_issue_urls_per_service() {
        let gh = Hosting::from_remote("git@github.com:acme/shop.git").unwrap();
        assert_eq!(gh.commit("abc"), "https://github.com/acme/shop/commit/abc");
        assert_eq!(gh.change(88), "https://github.com/acme/shop/pull/88");
        let gl = Hosting::from_remote("git@gitlab.com:g/p.git").unwrap();
        assert_eq!(gl.commit("abc"), "https://gitlab.com/g/p/-/commit/abc");
        assert_eq!(gl.change(7), "https://gitlab.com/g/p/-/merge_requests/7");
        let bb = Hosting::from_remote("git@bitbucket.org:t/r.git").unwrap();
        assert_eq!(bb.commit("abc"), "https://bitbucket.org/t/r/commits/abc");
        assert_eq!(bb.change(3), "https://bitbucket.org/t/r/pull-requests/3");
    }

    #[test]
    fn pull_requests_are_found_as_each_service_writes_them() {
        let gh = Hosting::from_remote("git@github.com:a/b").unwrap();
        assert_eq!(gh.changes_in("SHOP-112 search box (#88)"), vec![88]);
        assert_eq!(gh.changes_in("Merge pull request #12 from a/b"), vec![12]);
        assert_eq!(gh.changes_in("fix #42 in the parser"), Vec::<u32>::new());
        let gl = Hosting::from_remote("git@gitlab.com:a/b").unwrap();
        assert_eq!(gl.changes_in("Resolve thing (!5)"), vec![5]);
        let bb = Hosting::from_remote("git@bitbucket.org:a/b").unwrap();
        assert_eq!(bb.changes_in("Merged in feature (pull request #9)"), vec![9]);
    }

    #[test]
    fn hash_tickets_go_to_the_hosting_service_others_through_the_template() {
        let links = Links::new(
            Some("git@github.com:acme/shop.git"),
            Some(TicketTemplate::parse("https://t.example/{key}").unwrap()),
        );
        assert_eq!(links.ticket("#42").as_deref(), Some("https://github.com/acme/shop/issues/42"));
        assert_eq!(links.ticket("SHOP-1").as_deref(), Some("https://t.example/SHOP-1"));
        assert_eq!(Links::default().ticket("SHOP-1"), None);
    }

    #[test]
    fn ticket_templates_are_checked_and_filled_percent_encoded() {
        let t = TicketTemplate::parse("https://jira.example.com/browse/{key}").unwrap();
        assert_eq!(t.url("SHOP-1"), "https://jira.example.com/browse/SHOP-1");
        assert_eq!(t.url("a b&c"), "https://jira.example.com/browse/a%20b%26c");
        assert!(TicketTemplate::parse("https://jira.example.com/browse/").unwrap_err().contains("no {key}"));
        assert!(TicketTemplate::parse("javascript:alert(1)//{key}").unwrap_err().contains("not an http"));
        assert!(TicketTemplate::parse("https://x/{key}\"><b>").unwrap_err().contains("cannot stand"));
    }
}
