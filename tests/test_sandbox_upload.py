"""Contract tests of the dataFileUpload stand-in, over HTTP, against docs/safety-shield-api.md."""

from __future__ import annotations

import time

import requests

from clever_attendance_sandbox.process import set_faults
from clever_attendance_sandbox.truth import HEADER
from clever_attendance_sandbox.upload_store import imported_rows, write_counts

HEAD = ",".join(HEADER) + "\n"
ROW_A = "101,200417,09/02/2025,ATT_ModeDaily,,,,AE,Absent,,2025-09-02T15:04:05Z\n"
ROW_B = "101,200418,09/02/2025,ATT_ModeMeeting,3,MATH7,7-3,T,Present,,2025-09-02T10:12:00Z\n"


def post(info: dict, content: bytes | str, district: str = "D1", key: str | None = None,
         content_type: str = "text/csv", **fields) -> requests.Response:
    data = {"districtId": district, "fileType": "attendance", "sourceSystem": "clever", **fields}
    headers = {"Authorization": f"Bearer {info['upload_api_key']}"}
    if key:
        headers["Idempotency-Key"] = key
    body = content.encode() if isinstance(content, str) else content
    return requests.post(info["upload_url"] + "/api/v1/dataFileUpload", data=data, headers=headers,
                         files={"file": ("attendance.csv", body, content_type)}, timeout=10)


def wait(info: dict, upload_id: str, seen: set | None = None) -> dict:
    headers = {"Authorization": f"Bearer {info['upload_api_key']}"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = requests.get(f"{info['upload_url']}/api/v1/dataFileUpload/{upload_id}", headers=headers,
                            timeout=10).json()
        if seen is not None:
            seen.add(body["status"])
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.02)
    raise AssertionError(f"upload {upload_id} did not finish within 30 s")


def test_example_file_is_imported(sandbox):
    answer = post(sandbox, HEAD + ROW_A + ROW_B, district="ex1")
    assert answer.status_code == 202
    assert answer.json()["status"] == "queued"
    result = wait(sandbox, answer.json()["uploadId"])
    assert (result["status"], result["rowsReceived"], result["rowsImported"], result["rowsRejected"]) == \
        ("completed", 2, 2, 0)
    assert result["districtId"] == "ex1" and result["sourceSystem"] == "clever"
    assert imported_rows(sandbox["db"], "ex1") == [tuple(ROW_A.strip().split(",")),
                                                   tuple(ROW_B.strip().split(","))]


def test_api_key_is_required(sandbox):
    url = sandbox["upload_url"] + "/api/v1/dataFileUpload"
    assert requests.post(url, timeout=10).status_code == 401
    assert requests.get(url + "/upl_x", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401


def test_bad_requests_are_400(sandbox):
    assert post(sandbox, HEAD + ROW_A, fileType="enrollment").json()["error"] == "unknown_file_type"
    assert post(sandbox, HEAD + ROW_A, district="").json()["error"] == "missing_field"
    answer = post(sandbox, HEAD + ROW_A, content_type="application/pdf")
    assert answer.status_code == 400 and answer.json()["error"] == "not_csv"
    assert post(sandbox, HEAD + ROW_A, key="k" * 129).status_code == 400


def test_idempotency_key(sandbox):
    first = post(sandbox, HEAD + ROW_A, district="idem", key="idem-1")
    wait(sandbox, first.json()["uploadId"])
    again = post(sandbox, HEAD + ROW_A, district="idem", key="idem-1")
    assert again.status_code == 200 and again.json()["uploadId"] == first.json()["uploadId"]
    assert write_counts(sandbox["db"], "idem") == 1, "the same key and file import nothing twice"
    assert post(sandbox, HEAD + ROW_B, district="idem", key="idem-1").status_code == 409


def test_size_and_row_limits(sandbox):
    set_faults(sandbox, "upload", max_rows=1)
    too_many = post(sandbox, HEAD + ROW_A + ROW_B)
    assert too_many.status_code == 413
    assert too_many.json() == {"error": "file_too_large", "maxBytes": 25_000_000, "maxRows": 1}
    set_faults(sandbox, "upload", max_bytes=100)
    assert post(sandbox, HEAD + ROW_A).status_code == 413


def test_file_level_faults_import_nothing(sandbox):
    for content in [b"", ("\ufeff" + HEAD + ROW_A).encode(), HEAD.replace("SchoolID", "School") + ROW_A,
                    (HEAD + ROW_A).encode("utf-16"), b"\xff\xfe" + ROW_A.encode()]:
        answer = post(sandbox, content or b" ", district="filefault")
        assert wait(sandbox, answer.json()["uploadId"])["status"] == "failed"
    assert imported_rows(sandbox["db"], "filefault") == []


def test_row_level_faults_are_listed_and_the_rest_imported(sandbox):
    bad = [
        ROW_A.replace("09/02/2025", "2025-09-02"),
        ROW_A.replace("ATT_ModeDaily", "ATT_ModeWeekly").replace("200417", "1"),
        ROW_A.replace("Absent", "Gone").replace("200417", "2"),
        ROW_A.replace("200417", ""),
        ROW_B.replace("7-3", "").replace("200418", "3"),
        ROW_A.replace("2025-09-02T15:04:05Z", "yesterday").replace("200417", "4"),
        "101,5,09/02/2025\n",
    ]
    content = HEAD + ROW_A + "".join(bad) + ROW_A.replace("15:04:05", "16:00:00")
    result = wait(sandbox, post(sandbox, content, district="rows").json()["uploadId"])
    assert (result["status"], result["rowsReceived"], result["rowsImported"], result["rowsRejected"]) == \
        ("completed", 9, 1, 8)
    assert [(e["line"], e["column"]) for e in result["errors"]] == [
        (3, "Att_Date"), (4, "Att_Mode_Code"), (5, "Presence_Status_CD"), (6, "Student_Number"),
        (7, "Section_Number"), (8, "Last_Modified"), (9, ""), (10, "Student_Number")]
    assert "repeated" in result["errors"][-1]["message"]


def test_upsert_keeps_the_later_last_modified(sandbox):
    newer = ROW_A.replace("AE,Absent", ",Present").replace("15:04:05", "18:00:00")
    wait(sandbox, post(sandbox, HEAD + newer, district="ups").json()["uploadId"])
    wait(sandbox, post(sandbox, HEAD + ROW_A, district="ups").json()["uploadId"])
    assert imported_rows(sandbox["db"], "ups") == [tuple(newer.strip().split(","))]
    wait(sandbox, post(sandbox, HEAD + newer, district="ups").json()["uploadId"])
    assert write_counts(sandbox["db"], "ups") == 1, "re-posting the same rows changes nothing"


def test_fault_throttling_with_retry_after(sandbox):
    set_faults(sandbox, "upload", throttle_rate=1.0, retry_after=2)
    answer = post(sandbox, HEAD + ROW_A)
    assert answer.status_code in (429, 503) and answer.headers["Retry-After"] == "2"
    set_faults(sandbox, "upload", error_rate=1.0)
    assert post(sandbox, HEAD + ROW_A).status_code == 500


def test_fault_slow_import_is_seen_processing(sandbox):
    set_faults(sandbox, "upload", import_seconds=0.5)
    seen: set = set()
    result = wait(sandbox, post(sandbox, HEAD + ROW_A, district="slow").json()["uploadId"], seen)
    assert result["status"] == "completed" and "processing" in seen


def test_rows_can_be_read_back_over_http(sandbox):
    wait(sandbox, post(sandbox, HEAD + ROW_B, district="readback").json()["uploadId"])
    rows = requests.get(sandbox["upload_url"] + "/admin/rows", params={"districtId": "readback"},
                        timeout=10).json()["rows"]
    assert rows == [ROW_B.strip().split(",")]
