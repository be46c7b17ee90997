// The client portal's one script (served by Rappel, allowed by the page's CSP). The pages
// work without it; with it, the answer form takes files by drag-and-drop and shows the
// upload progress of each file.
(function () {
  "use strict";
  var form = document.getElementById("answer-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
  var input = document.getElementById("files");
  var drop = document.getElementById("drop");
  var list = document.getElementById("file-list");
  var bars = [];

  function sizeText(bytes) {
    if (bytes < 1024) { return bytes + " o"; }
    if (bytes < 1024 * 1024) { return Math.round(bytes / 1024) + " Ko"; }
    return (bytes / (1024 * 1024)).toFixed(1) + " Mo";
  }

  function showFiles() {
    list.textContent = "";
    bars = [];
    Array.prototype.forEach.call(input.files, function (file) {
      var item = document.createElement("li");
      var name = document.createElement("span");
      name.textContent = file.name + " (" + sizeText(file.size) + ")";
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      bar.setAttribute("aria-label", file.name);
      item.appendChild(name);
      item.appendChild(bar);
      list.appendChild(item);
      bars.push({ file: file, bar: bar });
    });
  }

  input.addEventListener("change", showFiles);
  ["dragenter", "dragover"].forEach(function (type) {
    drop.addEventListener(type, function (event) {
      event.preventDefault();
      drop.classList.add("over");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    drop.addEventListener(type, function () { drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      showFiles();
    }
  });

  // Files go in order in the multipart body, after the text fields: file i's bytes start
  // at about the text's size plus the sizes of the files before it.
  function progress(loaded, textBytes) {
    var offset = textBytes;
    bars.forEach(function (entry) {
      var size = Math.max(entry.file.size, 1);
      var done = Math.min(Math.max(loaded - offset, 0), size) / size;
      entry.bar.value = Math.round(done * 100);
      offset += entry.file.size;
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = new FormData(form);
    var submitter = event.submitter;
    if (submitter && submitter.name) { data.append(submitter.name, submitter.value); }
    var textBytes = 0;
    data.forEach(function (value) {
      if (typeof value === "string") { textBytes += value.length + 100; }
    });
    var buttons = form.querySelectorAll("button");
    Array.prototype.forEach.call(buttons, function (button) { button.disabled = true; });
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.upload.addEventListener("progress", function (e) { progress(e.loaded, textBytes); });
    request.addEventListener("load", function () {
      if (request.responseURL && request.responseURL.indexOf("sent=1") !== -1) {
        window.location.assign(request.responseURL);
        return;
      }
      var page = new DOMParser().parseFromString(request.responseText, "text/html");
      document.body.replaceWith(document.adoptNode(page.body));
      window.scrollTo(0, 0);
    });
    request.addEventListener("error", function () {
      Array.prototype.forEach.call(buttons, function (button) { button.disabled = false; });
    });
    request.send(data);
  });
}());
