//! `regstore` end to end with a `config.yml` that holds no keys, against a moto that enforces
//! authentication (`INITIAL_NO_AUTH_ACTION_COUNT`), for each source of the AWS default chain:
//! environment keys, web identity (STS stand-in), a profile with `role_arn` + `source_profile`
//! (moto's STS AssumeRole), the container endpoint with a token file (EKS Pod Identity shape)
//! and IMDSv2 (stand-in). Every source puts a file with `regstore put` and reads it back with
//! `regstore cat`; unknown keys are refused, so a pass proves the chain's credentials signed.
//!
//! The test starts its own moto (`python3 -m moto.server`, installed by `cargo xtask test`)
//! and sets IAM up with boto3 (a dependency of moto) within the free actions. Without moto it
//! skips, or fails when `CI` is set.

mod common;

#[path = "../../driver-s3/tests/common/standin.rs"]
mod standin;

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use common::Sandbox;
use standin::Creds;

/// IAM requests of the set-up script, all unauthenticated (moto lets exactly these through).
const SETUP_ACTIONS: usize = 8;

/// The sources, also the object names under `/docker/keyless/`.
const SOURCES: &[&str] = &[
    "environment",
    "web-identity",
    "profile",
    "container",
    "imds",
];

// moto 5.2.1 with authentication enforced miscomputes the SigV4 signature of a ListObjectsV2
// whose prefix holds a `/` (boto3's own request is refused the same way), and `regstore put`
// checks that the path is not a directory (HeadObject, then ListObjectsV2 on `path/` when no
// object is there). The set-up therefore stores a placeholder at each path first, so `put`'s
// check ends at HeadObject; the test then overwrites it through `regstore put` and reads the
// new content back with `regstore cat`, both signed with the chain's credentials.

const SETUP: &str = r#"
import json, sys, boto3
url, bucket = sys.argv[1], sys.argv[2]
allow_all = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
assume_only = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}'
trust_all = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["sts:AssumeRole","sts:AssumeRoleWithWebIdentity"]}]}'
def client(service, key, secret, token=None):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        aws_session_token=token)
iam = client("iam", "AKIASETUP", "setup")
iam.create_user(UserName="cli")
iam.put_user_policy(UserName="cli", PolicyName="all", PolicyDocument=allow_all)
k = iam.create_access_key(UserName="cli")["AccessKey"]
role = iam.create_role(RoleName="registry", AssumeRolePolicyDocument=trust_all)["Role"]["Arn"]
iam.put_role_policy(RoleName="registry", PolicyName="all", PolicyDocument=allow_all)
iam.create_user(UserName="limited")
iam.put_user_policy(UserName="limited", PolicyName="assume-only", PolicyDocument=assume_only)
l = iam.create_access_key(UserName="limited")["AccessKey"]
# Authentication is enforced from here on.
s3 = client("s3", k["AccessKeyId"], k["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
# Placeholders the test overwrites (see PLACEHOLDER).
for name in sys.argv[3].split(","):
    s3.put_object(Bucket=bucket, Key="cli/docker/keyless/" + name, Body=b"placeholder")
sts = client("sts", k["AccessKeyId"], k["SecretAccessKey"])
temp = {}
for name in ["webidentity", "container", "imds"]:
    c = sts.assume_role(RoleArn=role, RoleSessionName=name)["Credentials"]
    temp[name] = [c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]]
print(json.dumps({"key": [k["AccessKeyId"], k["SecretAccessKey"]],
                  "limited": [l["AccessKeyId"], l["SecretAccessKey"]],
                  "role": role, "temp": temp}))
"#;

/// The set-up's answer.
struct Setup {
    key: (String, String),
    limited: (String, String),
    role: String,
    temp: serde_json::Value,
}

fn setup(url: &str, bucket: &str) -> Setup {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", SETUP, url, bucket, &SOURCES.join(",")]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .output()
        .expect("run the boto3 set-up");
    assert!(
        out.status.success(),
        "IAM set-up failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("set-up JSON");
    let pair = |x: &serde_json::Value| {
        (
            x[0].as_str().unwrap().to_owned(),
            x[1].as_str().unwrap().to_owned(),
        )
    };
    Setup {
        key: pair(&v["key"]),
        limited: pair(&v["limited"]),
        role: v["role"].as_str().unwrap().to_owned(),
        temp: v["temp"].clone(),
    }
}

fn temp(s: &Setup, name: &str) -> Creds {
    let t = &s.temp[name];
    // moto's role sessions last an hour; announce a little less.
    Creds::expiring_in(
        t[0].as_str().unwrap(),
        t[1].as_str().unwrap(),
        t[2].as_str(),
        3000,
    )
}

/// `regstore put` then `regstore cat` of one file with the AWS environment `vars` only.
fn put_and_cat(sb: &Sandbox, cfg: &str, name: &str, vars: &[(&str, &str)]) {
    let home = sb.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut env: Vec<(&str, &str)> = vec![("HOME", home.to_str().unwrap())];
    if !vars.iter().any(|(k, _)| k.starts_with("AWS_EC2_METADATA")) {
        env.push(("AWS_EC2_METADATA_DISABLED", "true"));
    }
    env.extend_from_slice(vars);
    let content = format!("written by regstore with credentials from {name}\n");
    let file = sb.file(&format!("{name}.txt"), &content);
    let path = format!("/docker/keyless/{name}");
    let started = Instant::now();
    let put = tokio::task::block_in_place(|| {
        sb.run_clean_aws(
            &["--config", cfg, "put", &path, file.to_str().unwrap()],
            &env,
        )
    });
    assert_eq!(put.code, 0, "{name}: regstore put failed: {}", put.stderr);
    let cat =
        tokio::task::block_in_place(|| sb.run_clean_aws(&["--config", cfg, "cat", &path], &env));
    assert_eq!(cat.code, 0, "{name}: regstore cat failed: {}", cat.stderr);
    assert_eq!(cat.out(), content, "{name}: content read back differs");
    println!("{name}: put + cat in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regstore_with_each_keyless_source_on_moto_with_authentication() {
    let started = Instant::now();
    let Some(moto) = regstore_test_support::EnforcedMoto::start(SETUP_ACTIONS, "boto3") else {
        return;
    };
    let bucket = "regstore-cli-keyless";
    let s = setup(&moto.url, bucket);
    let sb = Sandbox::new();
    let cfg = sb.file(
        "config.yml",
        &format!(
            "version: 0.1\nstorage:\n  s3:\n    region: us-east-1\n    regionendpoint: {}\n    \
             bucket: {bucket}\n    forcepathstyle: true\n    v4auth: true\n    \
             rootdirectory: /cli\n",
            moto.url
        ),
    );
    let cfg = cfg.to_str().unwrap();

    // Environment keys.
    put_and_cat(
        &sb,
        cfg,
        "environment",
        &[
            ("AWS_ACCESS_KEY_ID", &s.key.0),
            ("AWS_SECRET_ACCESS_KEY", &s.key.1),
        ],
    );
    // moto really checks: an unknown key is refused, exit status 1, one line.
    let file = sb.file("refused.txt", "x");
    let home = sb.path("home");
    let run = tokio::task::block_in_place(|| {
        sb.run_clean_aws(
            &[
                "--config",
                cfg,
                "put",
                "/docker/refused",
                file.to_str().unwrap(),
            ],
            &[
                ("HOME", home.to_str().unwrap()),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN000000000"),
                ("AWS_SECRET_ACCESS_KEY", &s.key.1),
            ],
        )
    });
    let line = run.fails_with(1);
    assert!(
        line.contains("InvalidAccessKeyId") || line.contains("403"),
        "unknown key: {line}"
    );
    assert!(!line.contains(&s.key.1), "the secret leaked: {line}");

    // Web identity: the STS stand-in checks the unsigned form and answers with moto's keys.
    let jwt = sb.file("web-identity-token", "eyJhbGciOiJSUzI1NiJ9.cli.sig\n");
    let creds = temp(&s, "webidentity");
    let role: &'static str = Box::leak(s.role.clone().into_boxed_str());
    let sts = standin::sts_web_identity(role, jwt.clone(), Arc::new(move || creds.clone()));
    put_and_cat(
        &sb,
        cfg,
        "web-identity",
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", jwt.to_str().unwrap()),
            ("AWS_ROLE_ARN", &s.role),
            ("AWS_ENDPOINT_URL_STS", &sts.url),
        ],
    );
    assert!(!sts.hits().is_empty(), "the STS stand-in was not asked");

    // Profile: role_arn + source_profile (a user that may only assume the role), moto's STS.
    let config = sb.file(
        "aws-config",
        &format!(
            "[profile app]\nrole_arn = {}\nsource_profile = base\nrole_session_name = cli\n",
            s.role
        ),
    );
    let credentials = sb.file(
        "aws-credentials",
        &format!(
            "[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            s.limited.0, s.limited.1
        ),
    );
    put_and_cat(
        &sb,
        cfg,
        "profile",
        &[
            ("AWS_PROFILE", "app"),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
            ("AWS_ENDPOINT_URL_STS", &moto.url),
        ],
    );

    // Container endpoint, full URI + token file (EKS Pod Identity).
    let token_file = sb.file("eks-pod-identity-token", "pod-identity-token\n");
    let creds = temp(&s, "container");
    let container = standin::container(
        "/v1/credentials",
        token_file.clone(),
        Arc::new(move || creds.clone()),
    );
    let full = format!("{}/v1/credentials", container.url);
    put_and_cat(
        &sb,
        cfg,
        "container",
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.to_str().unwrap(),
            ),
        ],
    );
    assert!(
        !container.hits().is_empty(),
        "the container endpoint was not asked"
    );

    // IMDSv2: the stand-in refuses token-less requests.
    let creds = temp(&s, "imds");
    let imds = standin::imds("registry-node", Arc::new(move || creds.clone()));
    put_and_cat(
        &sb,
        cfg,
        "imds",
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url)],
    );
    assert_eq!(
        imds.hits()[0].method,
        "PUT",
        "IMDSv2 starts with the token PUT"
    );

    println!("keyless CLI scenarios took {:?}", started.elapsed());
}
