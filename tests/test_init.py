"""End to end: `ohf init` as an administrator runs it, against moto_server, then HF's calls.

Every run is a real `python -m ohf` process: without questions (`--yes`), through a
pseudo-terminal (numbers typed), from IBM's sample files, and with bad input, which must end
in one line saying why, a non-zero exit and nothing written.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import AL2023, REGION, ec2_client, run_ohf

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).parent / "data" / "ibm"
_HF_VARS = ("OHF_CONFIG", "HF_PROVIDER_CONFDIR", "PRO_CONF_DIR", "HF_PROVIDER_WORKDIR")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HF_VARS}
    return {**env, **extra}


def init(*args: str, env: dict[str, str] | None = None, stdin: Any = subprocess.DEVNULL):
    """`python -m ohf init ARGS`: the finished process (stdout and stderr as text)."""
    return subprocess.run(
        [sys.executable, "-m", "ohf", "init", *args],
        env=env or clean_env(),
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def written(conf: Path) -> dict[str, Any]:
    return tomllib.loads((conf / "ohf.toml").read_text())


def until_done(request_id: str, conf: Path) -> dict[str, Any]:
    """getRequestStatus until the request is no longer running."""
    for _ in range(40):
        code, out, err = run_ohf(
            "getRequestStatus", {"requests": [{"requestId": request_id}]}, conf
        )
        assert code == 0, (out, err)
        request = out["requests"][0]  # type: ignore[index]
        if request["status"] != "running":
            return dict(request)
        time.sleep(0.5)
    raise AssertionError(f"{request_id} still running")


# --- Without questions ---------------------------------------------------------------------


def test_init_yes_writes_a_config_whose_templates_launch_and_return(
    aws: str, tmp_path: Path
) -> None:
    conf = tmp_path / "conf"
    done = init(str(conf), "--endpoint-url", aws, "--region", REGION, "--yes")
    assert done.returncode == 0, done.stderr
    assert "identity: arn:aws:sts::123456789012" in done.stderr
    assert "template OnDemand-c5-large: ok" in done.stdout
    assert "ohf install-scripts" in done.stdout and "ohf health --config" in done.stdout
    config = written(conf)
    assert config["aws"] == {"region": REGION, "endpoint_url": aws}
    on_demand, fleet = config["templates"]
    # What was discovered is real on the cloud.
    ec2 = ec2_client(aws)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnets = on_demand["subnetId"].split(",")
    found = ec2.describe_subnets(SubnetIds=subnets)["Subnets"]
    assert {s["VpcId"] for s in found} == {vpc["VpcId"]}
    group = ec2.describe_security_groups(GroupIds=on_demand["securityGroupIds"])
    assert group["SecurityGroups"][0]["GroupName"] == "default"
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=aws)
    ami = ssm.get_parameter(Name=on_demand["imageId"])["Parameter"]["Value"]
    assert ec2.describe_images(ImageIds=[ami])["Images"]
    assert fleet["providerApi"] == "EC2Fleet" and fleet["priceType"] == "heterogeneous"

    # HF's lifecycle, unchanged, on the written config (found in HF's conf dir).
    code, out, err = run_ohf(
        "requestMachines",
        {"template": {"templateId": on_demand["templateId"], "machineCount": 2}},
        conf,
    )
    assert code == 0, (out, err)
    request = until_done(out["requestId"], conf)  # type: ignore[index]
    assert request["status"] == "complete"
    machines = request["machines"]
    assert len(machines) == 2 and {m["result"] for m in machines} == {"succeed"}
    ids = [m["machineId"] for m in machines]
    described = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    instances = [i for r in described for i in r["Instances"]]
    assert {i["SubnetId"] for i in instances} <= set(subnets)
    assert {i["ImageId"] for i in instances} == {ami}
    code, out, err = run_ohf(
        "requestReturnMachines",
        {"machines": [{"machineId": m["machineId"], "name": m["name"]} for m in machines]},
        conf,
    )
    assert code == 0, (out, err)
    assert until_done(out["requestId"], conf)["status"] == "complete"  # type: ignore[index]
    states = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    assert {i["State"]["Name"] for r in states for i in r["Instances"]} == {"terminated"}

    # The fleet template launches too: 8 units of vCPU-weighted types.
    ask = {"template": {"templateId": fleet["templateId"], "machineCount": 8}}
    code, out, err = run_ohf("requestMachines", ask, conf)
    assert code == 0, (out, err)
    assert until_done(out["requestId"], conf)["status"] == "complete"  # type: ignore[index]


def test_init_in_a_region_without_default_vpc_takes_the_subnets_given(
    aws: str, tmp_path: Path
) -> None:
    ec2 = boto3.client("ec2", region_name="eu-west-2", endpoint_url=aws)
    drop_default_vpc(ec2)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone=zone)
    subnet_id = subnet["Subnet"]["SubnetId"]
    conf = tmp_path / "conf"
    done = init(
        str(conf), "--endpoint-url", aws, "--region", "eu-west-2", "--subnets", subnet_id, "--yes"
    )
    assert done.returncode == 0, done.stderr
    template = written(conf)["templates"][0]
    assert template["subnetId"] == subnet_id
    (group,) = template["securityGroupIds"]
    assert ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["VpcId"] == vpc


# --- Through a terminal --------------------------------------------------------------------


class Terminal:
    """A process on a pseudo-terminal: read what it shows, type answers."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.fd, child = os.openpty()
        self.proc = subprocess.Popen(
            args, stdin=child, stdout=child, stderr=child, env=env, close_fds=True
        )
        os.close(child)
        self.seen = b""

    def expect(self, *texts: str, timeout: float = 30) -> str:
        """Everything shown up to and including the first of `texts` to appear."""
        deadline = time.monotonic() + timeout
        while not any(t.encode() in self.seen for t in texts):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {texts!r} in {self.seen.decode(errors='replace')}")
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    break
        ends = [self.seen.find(t.encode()) + len(t) for t in texts if t.encode() in self.seen]
        assert ends, f"the process ended without {texts!r}: {self.seen.decode(errors='replace')}"
        end = min(ends)
        shown, self.seen = self.seen[:end], self.seen[end:]
        return shown.decode()

    def type(self, line: str) -> None:
        os.write(self.fd, f"{line}\n".encode())

    def close(self) -> int:
        code = self.proc.wait(timeout=60)
        os.close(self.fd)
        return code


def test_interactive_init_asks_with_numbers_and_writes_the_answers(
    aws: str, tmp_path: Path
) -> None:
    ec2 = ec2_client(aws)
    ec2.create_key_pair(KeyName="hpc-key")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    hpc = ec2.create_security_group(GroupName="hpc", Description="HPC hosts", VpcId=vpc)
    conf = tmp_path / "conf"
    args = [sys.executable, "-m", "ohf", "init", str(conf), "--endpoint-url", aws]
    term = Terminal([*args, "--region", REGION], clean_env())
    menu = term.expect("(Enter = 1): ")
    assert "Image:" in menu and " *1) Amazon Linux 2023 x86_64" in menu
    term.type("2")  # arm64: Graviton types from here on
    menu = term.expect("(Enter = the marked ones): ")
    assert "Subnets" in menu and "us-east-1a" in menu
    subnets = [line.split()[1] for line in menu.splitlines() if ") subnet-" in line]
    term.type("1, 2")
    menu = term.expect("(Enter = the marked ones): ")
    assert "Security groups:" in menu and " *1) sg-" in menu
    term.type("2")
    menu = term.expect("(Enter = 1): ")
    assert "Key pair:" in menu and "2) hpc-key" in menu
    term.type("x")  # not a number: asked again
    term.expect("(Enter = 1): ")
    term.type("2")
    menu = term.expect("(Enter = 1): ")
    assert "on-demand template" in menu and "c7g.large" in menu and "c5.large" not in menu
    term.type("")
    term.expect("(Enter = the marked ones): ")
    term.type("")
    term.expect("[Y/n]: ")
    assert not (conf / "ohf.toml").exists()
    term.type("y")
    rest = term.expect("REQUEST_ID")
    assert term.close() == 0, rest
    config = written(conf)
    on_demand, fleet = config["templates"]
    assert on_demand["imageId"].endswith("-arm64")
    assert on_demand["vmType"] == "c7g.large"
    assert on_demand["subnetId"] == ",".join(subnets[:2])
    assert on_demand["securityGroupIds"] == [hpc["GroupId"]]
    assert on_demand["keyName"] == "hpc-key"
    assert set(fleet["vmTypes"]) == {
        "c6g.large",
        "c6g.xlarge",
        "c7g.large",
        "c7g.xlarge",
        "m7g.large",
        "m7g.xlarge",
    }
    assert fleet["vmTypesOnDemand"] == {"m6g.large": 2, "m6g.xlarge": 4}


def test_interactive_init_said_no_writes_nothing(aws: str, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    args = [sys.executable, "-m", "ohf", "init", str(conf), "--endpoint-url", aws]
    term = Terminal([*args, "--region", REGION, "--image", AL2023], clean_env())
    for _ in range(6):  # subnets, types: Enter to each, until asked to confirm
        if "[Y/n]" in term.expect("): ", "[Y/n]: "):
            break
        term.type("")
    term.type("n")
    assert term.close() == 1
    assert not conf.exists()


# --- From IBM's files ----------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["aws", "awsv2"])
def test_from_ibm_converts_the_published_samples(provider: str, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    done = init(str(conf), "--from-ibm", str(SAMPLES / provider))
    assert done.returncode == 0, done.stderr
    assert "Not carried over:" in done.stdout
    assert "Template-VM-1.securityGroupIds: empty ids" in done.stdout
    assert "'ami-27a1' is not an AMI id" in done.stdout
    config = written(conf)
    assert config["aws"] == {"region": "us-west-2", "credentials_file": "/home/aws/credentials"}
    assert [t["templateId"] for t in config["templates"]] == ["Template-VM-1", "Template-VM-2"]
    assert config["templates"][0]["userData"] == "zone=us_west_2a"
    check = subprocess.run(
        [sys.executable, "-m", "ohf", "validate", "--config", str(conf / "ohf.toml")],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout


# --- Bad input -----------------------------------------------------------------------------


def drop_default_vpc(ec2: Any) -> None:
    for vpc in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]:
        for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
            "Subnets"
        ]:
            ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        ec2.delete_vpc(VpcId=vpc["VpcId"])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def no_credentials(tmp_path: Path) -> dict[str, str]:
    empty = tmp_path / "empty"
    empty.write_text("")
    env = {k: v for k, v in clean_env().items() if not k.startswith("AWS_")}
    return {
        **env,
        "HOME": str(tmp_path),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_CONFIG_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def assert_refused(done: subprocess.CompletedProcess[str], reason: str, code: int = 1) -> None:
    """A non-zero exit, and one line saying why (after any progress lines)."""
    assert done.returncode == code, (done.stdout, done.stderr)
    said = [line for line in done.stderr.splitlines() if line.startswith("ohf init: ")]
    assert len(said) == 1 and reason in said[0], done.stderr
    assert done.stderr.rstrip().endswith(said[0])
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unreachable", "GetCallerIdentity: cannot reach http://127.0.0.1:"),
        ("no credentials", "no AWS credentials found"),
        ("no default VPC", "eu-west-2 has no default VPC: pass --subnets"),
        ("not a terminal", "stdin is not a terminal"),
        ("unknown subnet", "subnet subnet-0000 not found in us-east-1"),
        ("unknown profile", "nosuch"),
        ("unknown image", "DescribeImages: InvalidAMIID.NotFound"),
    ],
)
def test_bad_input_says_why_in_one_line_and_writes_nothing(
    aws: str, tmp_path: Path, case: str, reason: str
) -> None:
    conf = tmp_path / "new" / "conf"
    args = [str(conf), "--endpoint-url", aws, "--region", REGION, "--yes"]
    env = None
    if case == "unreachable":
        args[2] = f"http://127.0.0.1:{_closed_port()}"
    elif case == "no credentials":
        env = no_credentials(tmp_path)
    elif case == "no default VPC":
        drop_default_vpc(boto3.client("ec2", region_name="eu-west-2", endpoint_url=aws))
        args[4] = "eu-west-2"
    elif case == "not a terminal":
        args.remove("--yes")
    elif case == "unknown subnet":
        args += ["--subnets", "subnet-0000"]
    elif case == "unknown profile":
        args += ["--profile", "nosuch"]
    elif case == "unknown image":
        args += ["--image", "ami-0123456789abcdef0"]
    assert_refused(init(*args, env=env), reason)
    assert not (tmp_path / "new").exists()


def test_unknown_flags_are_usage_errors(tmp_path: Path) -> None:
    done = init(str(tmp_path / "conf"), "--yes", "--vpc", "vpc-1")
    assert done.returncode == 2
    assert "unrecognized arguments: --vpc" in done.stderr
    assert not (tmp_path / "conf").exists()
    done = init(str(tmp_path / "conf"), "--from-ibm", str(SAMPLES / "aws"), "--image", "ami-1")
    assert done.returncode == 2 and "--from-ibm" in done.stderr
    assert not (tmp_path / "conf").exists()


def test_an_existing_config_is_replaced_only_with_force(aws: str, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "ohf.toml").write_text("# mine\n")
    args = [str(conf), "--endpoint-url", aws, "--region", REGION, "--yes"]
    assert_refused(init(*args), "ohf.toml exists: pass --force")
    assert_refused(init(str(conf), "--from-ibm", str(SAMPLES / "aws")), "pass --force")
    assert (conf / "ohf.toml").read_text() == "# mine\n"
    assert sorted(p.name for p in conf.iterdir()) == ["ohf.toml"]
    done = init(*args, "--force")
    assert done.returncode == 0, done.stderr
    assert written(conf)["templates"]
    assert sorted(p.name for p in conf.iterdir()) == ["ohf.toml"]


def test_from_ibm_without_templates_says_so(tmp_path: Path) -> None:
    assert_refused(
        init(str(tmp_path / "conf"), "--from-ibm", str(tmp_path)), "no awsprov_templates"
    )
    assert not (tmp_path / "conf").exists()


def test_a_given_ami_brings_types_of_its_architecture(aws: str, tmp_path: Path) -> None:
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=aws)
    arm = ssm.get_parameter(Name=AL2023.replace("x86_64", "arm64"))["Parameter"]["Value"]
    conf = tmp_path / "conf"
    done = init(str(conf), "--endpoint-url", aws, "--region", REGION, "--image", arm, "--yes")
    assert done.returncode == 0, done.stderr
    on_demand, fleet = written(conf)["templates"]
    assert (on_demand["imageId"], on_demand["vmType"]) == (arm, "c7g.large")
    assert "c6g.large" in fleet["vmTypes"]
