//! The page model: every page is a heading, an optional error summary and sections of
//! blocks (paragraphs, summary lists, tables, charts, forms), rendered by one template in
//! GOV.UK Frontend markup. Handlers build the model; the template only lays it out, and
//! escapes everything.

use askama::Template;

/// The frame around every page: title, who is signed in, navigation, breadcrumbs.
pub(crate) struct Chrome {
    pub title: String,
    pub user: Option<String>,
    pub csrf: String,
    pub breadcrumbs: Vec<Link>,
}

impl Chrome {
    pub(crate) fn anonymous(title: &str) -> Chrome {
        Chrome {
            title: title.to_string(),
            user: None,
            csrf: String::new(),
            breadcrumbs: Vec::new(),
        }
    }

    pub(crate) fn for_user(title: &str, p: &crate::auth::Principal) -> Chrome {
        Chrome {
            title: title.to_string(),
            user: Some(format!("{} ({})", p.display_name, p.org_name)),
            csrf: p.csrf_token().to_string(),
            breadcrumbs: Vec::new(),
        }
    }

    pub(crate) fn crumbs(mut self, crumbs: Vec<Link>) -> Chrome {
        self.breadcrumbs = crumbs;
        self
    }
}

#[derive(Clone)]
pub(crate) struct Link {
    pub text: String,
    pub href: String,
}

pub(crate) fn link(text: impl Into<String>, href: impl Into<String>) -> Link {
    Link {
        text: text.into(),
        href: href.into(),
    }
}

/// A whole page.
#[derive(Template)]
#[template(path = "page.html")]
pub(crate) struct Page {
    pub chrome: Chrome,
    pub caption: Option<String>,
    pub heading: String,
    /// For the error summary: the message and the id of the field at fault.
    pub errors: Vec<(String, String)>,
    /// A green banner after a change succeeded.
    pub success: Option<String>,
    pub lead: Option<String>,
    pub sections: Vec<Section>,
    /// Sections rendered before (by [`render_sections`], so escaped), shown after `sections`.
    pub fragment: Option<std::sync::Arc<String>>,
}

impl Page {
    pub(crate) fn new(chrome: Chrome, heading: impl Into<String>) -> Page {
        Page {
            chrome,
            caption: None,
            heading: heading.into(),
            errors: Vec::new(),
            success: None,
            lead: None,
            sections: Vec::new(),
            fragment: None,
        }
    }

    pub(crate) fn caption(mut self, caption: impl Into<String>) -> Page {
        self.caption = Some(caption.into());
        self
    }

    pub(crate) fn section(mut self, section: Section) -> Page {
        self.sections.push(section);
        self
    }

    pub(crate) fn html(self) -> Result<axum::response::Html<String>, crate::error::WebError> {
        let title = if self.errors.is_empty() {
            self.chrome.title.clone()
        } else {
            format!("Error: {}", self.chrome.title)
        };
        let mut page = self;
        page.chrome.title = title;
        page.render()
            .map(axum::response::Html)
            .map_err(|e| crate::error::WebError::Internal(e.into()))
    }
}

pub(crate) struct Section {
    pub heading: Option<String>,
    pub id: String,
    pub blocks: Vec<Block>,
}

pub(crate) fn section(heading: &str, id: &str) -> Section {
    Section {
        heading: Some(heading.to_string()),
        id: id.to_string(),
        blocks: Vec::new(),
    }
}

pub(crate) fn untitled(id: &str) -> Section {
    Section {
        heading: None,
        id: id.to_string(),
        blocks: Vec::new(),
    }
}

impl Section {
    pub(crate) fn with(mut self, block: Block) -> Section {
        self.blocks.push(block);
        self
    }

    pub(crate) fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }
}

pub(crate) enum Block {
    Para(String),
    Inset(String),
    Warning(String),
    Summary(Vec<(String, String)>),
    Table(Table),
    Image {
        src: String,
        alt: String,
    },
    Links(Vec<Link>),
    Form(Form),
    /// Pre-formatted text (a diff, an agreement file).
    Code(String),
    /// How far a long task has got; with JavaScript the page reloads itself every second
    /// until the task is done, without it the "Check progress" link does the same.
    Progress(String),
}

pub(crate) struct Table {
    pub caption: String,
    pub head: Vec<Cell>,
    pub rows: Vec<Vec<Cell>>,
    /// An id per row, for links to a row (an error summary's); empty for none.
    pub row_ids: Vec<String>,
}

impl Table {
    pub(crate) fn row_id(&self, i: usize) -> &str {
        self.row_ids.get(i).map_or("", String::as_str)
    }
}

#[derive(Clone, Default)]
pub(crate) struct Cell {
    pub text: String,
    pub numeric: bool,
    pub href: Option<String>,
    /// A GOV.UK tag colour (`green`, `yellow`, `red`, `grey`) to show the text as a tag.
    pub tag: Option<&'static str>,
}

pub(crate) fn cell(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        ..Cell::default()
    }
}

pub(crate) fn num(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        numeric: true,
        ..Cell::default()
    }
}

impl Cell {
    pub(crate) fn link(mut self, href: impl Into<String>) -> Cell {
        self.href = Some(href.into());
        self
    }

    pub(crate) fn tag(mut self, colour: &'static str) -> Cell {
        self.tag = Some(colour);
        self
    }
}

pub(crate) fn table(caption: &str, head: Vec<Cell>, rows: Vec<Vec<Cell>>) -> Table {
    Table {
        caption: caption.to_string(),
        head,
        rows,
        row_ids: Vec::new(),
    }
}

pub(crate) struct Form {
    pub action: String,
    /// `get` or `post`.
    pub method: &'static str,
    pub multipart: bool,
    pub csrf: String,
    pub fields: Vec<Field>,
    pub submit: String,
    /// A warning button (period close) rather than the usual green.
    pub warning: bool,
}

pub(crate) struct Field {
    pub id: String,
    pub name: String,
    pub label: String,
    pub hint: Option<String>,
    pub error: Option<String>,
    pub kind: FieldKind,
    pub value: String,
}

pub(crate) enum FieldKind {
    Text,
    Password,
    Date,
    Textarea,
    File,
    Hidden,
    Select(Vec<(String, String)>),
}

pub(crate) fn field(name: &str, label: &str, kind: FieldKind) -> Field {
    Field {
        id: name.to_string(),
        name: name.to_string(),
        label: label.to_string(),
        hint: None,
        error: None,
        kind,
        value: String::new(),
    }
}

impl Field {
    pub(crate) fn hint(mut self, hint: &str) -> Field {
        self.hint = Some(hint.to_string());
        self
    }

    pub(crate) fn value(mut self, value: impl Into<String>) -> Field {
        self.value = value.into();
        self
    }

    pub(crate) fn error(mut self, error: Option<String>) -> Field {
        self.error = error;
        self
    }

    /// Another id than the name, where two forms on a page share a field name.
    pub(crate) fn with_id(mut self, id: &str) -> Field {
        self.id = id.to_string();
        self
    }

    pub(crate) fn is_hidden(&self) -> bool {
        matches!(self.kind, FieldKind::Hidden)
    }
}

pub(crate) fn post_form(action: String, csrf: &str, submit: &str, fields: Vec<Field>) -> Form {
    Form {
        action,
        method: "post",
        multipart: fields.iter().any(|f| matches!(f.kind, FieldKind::File)),
        csrf: csrf.to_string(),
        fields,
        submit: submit.to_string(),
        warning: false,
    }
}

pub(crate) fn get_form(action: String, submit: &str, fields: Vec<Field>) -> Form {
    Form {
        action,
        method: "get",
        multipart: false,
        csrf: String::new(),
        fields,
        submit: submit.to_string(),
        warning: false,
    }
}

/// Sections on their own, to be kept and shown in a page later.
#[derive(Template)]
#[template(path = "sections.html")]
struct SectionsFragment {
    sections: Vec<Section>,
}

pub(crate) fn render_sections(
    sections: Vec<Section>,
) -> Result<std::sync::Arc<String>, crate::error::WebError> {
    SectionsFragment { sections }
        .render()
        .map(std::sync::Arc::new)
        .map_err(|e| crate::error::WebError::Internal(e.into()))
}

#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub chrome: Chrome,
    pub title: &'static str,
    pub message: String,
}

/// A time as the store keeps it (`2026-12-01T20:56:15.240364Z`), as people read it:
/// `2026-12-01 20:56 UTC`.
pub(crate) fn when(stored: &str) -> String {
    match stored.parse::<jiff::Timestamp>() {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        Err(_) => stored.to_string(),
    }
}

/// The last part of a file path as it was given to the command line: where a file sat on
/// someone's machine is theirs, not every reader's.
pub(crate) fn file_name(path: &str) -> String {
    path.rsplit(['/', '\\']).next().unwrap_or(path).to_string()
}

/// Percent-encodes a query value.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
