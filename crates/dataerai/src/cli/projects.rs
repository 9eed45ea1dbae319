//! `dataerai project …` and `dataerai list projects`: create projects, list
//! them, manage their members.

use clap::Subcommand;
use serde_json::json;

use super::output::{fetch_pages, page_footer, print_json, print_result, PageArgs};
use super::Result;
use crate::service::{
    AddMemberParams, CreateProjectParams, ListMembersParams, PageParams, RemoveMemberParams,
    Service,
};

#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
    /// Create a project (with its root collection and default allocation).
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List, add or remove a project's members.
    #[command(subcommand)]
    Members(MembersCommand),
}

#[derive(Subcommand, Debug)]
pub enum MembersCommand {
    /// Everyone in the project and their role.
    List { project_id: String },
    /// Add someone (by email), or change their role (owners/admins only).
    Add {
        project_id: String,
        email: String,
        /// owner, admin, member or viewer.
        #[arg(long)]
        role: String,
    },
    /// Remove someone from the project (owners/admins only).
    Remove { project_id: String, email: String },
}

pub async fn run(svc: &Service, as_json: bool, cmd: ProjectCommand) -> Result<()> {
    match cmd {
        ProjectCommand::Create { name, description } => {
            let p = svc
                .create_project(CreateProjectParams { name, description })
                .await?;
            if as_json {
                print_json(&p);
            } else {
                crate::outln!("Created project {} ({})", p.name, p.project_id);
                crate::outln!("root collection: {}", p.root_collection_id);
            }
            Ok(())
        }
        ProjectCommand::Members(cmd) => members_cmd(svc, as_json, cmd).await,
    }
}

/// `dataerai list projects`
pub async fn list(svc: &Service, as_json: bool, pages: PageArgs) -> Result<()> {
    let page = fetch_pages(pages, |limit, offset| {
        svc.list_projects(PageParams { limit, offset })
    })
    .await?;
    if as_json {
        print_json(&page);
    } else {
        for p in &page.items {
            crate::outln!("{}  {:<8} {}", p.project_id, p.role, p.name);
        }
        page_footer(&page, "projects");
    }
    Ok(())
}

async fn members_cmd(svc: &Service, as_json: bool, cmd: MembersCommand) -> Result<()> {
    match cmd {
        MembersCommand::List { project_id } => {
            // Every member, 1000 a page (a project has at most 1000).
            let every = PageArgs {
                limit: Some(1000),
                all: true,
            };
            let page = fetch_pages(every, |limit, offset| {
                svc.list_members(ListMembersParams {
                    project_id: project_id.clone(),
                    limit,
                    offset,
                })
            })
            .await?;
            let (items, total) = (page.items, page.total);
            if as_json {
                print_json(&json!({"items": items, "total": total}));
            } else {
                for m in &items {
                    crate::outln!("{:<8} {}  {}", m.role, m.email, m.user_id);
                }
                crate::outln!("({} members)", items.len());
            }
        }
        MembersCommand::Add {
            project_id,
            email,
            role,
        } => {
            let m = svc
                .add_member(AddMemberParams {
                    project_id: project_id.clone(),
                    email,
                    role,
                })
                .await?;
            print_result(as_json, &m, || {
                format!("{} is now {} of project {project_id}", m.email, m.role)
            });
        }
        MembersCommand::Remove { project_id, email } => {
            svc.remove_member(RemoveMemberParams {
                project_id: project_id.clone(),
                email: email.clone(),
            })
            .await?;
            if as_json {
                print_json(&json!({"removed": email, "project_id": project_id}));
            } else {
                crate::outln!("Removed {email} from project {project_id}");
            }
        }
    }
    Ok(())
}
