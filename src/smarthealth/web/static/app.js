/* SmartHealth chat page: log in, pick a patient, ask questions over /ws/chat, read the cited
 * sources, and come back to earlier conversations.
 *
 * Security rules this file keeps:
 *  - Text from the record, the model or the user is only ever inserted with textContent /
 *    createTextNode; nothing is parsed as HTML (no innerHTML anywhere).
 *  - The token lives in a variable and in sessionStorage (gone when the tab closes); never in
 *    localStorage or a cookie.
 */
"use strict";

(() => {
  const TOKEN_KEY = "smarthealth.token";
  const RECONNECT_BASE_MS = 500;
  const RECONNECT_MAX_MS = 10_000;
  const CITATION = /(\[\d+\])/; // split() keeps the captured "[n]" pieces
  const SOURCE_TYPES = {
    demographics: "Datos demográficos",
    allergy: "Alergia",
    diagnosis: "Diagnóstico",
    prescription: "Prescripción",
    appointment: "Cita",
    vitals: "Signos vitales",
    note: "Nota clínica",
  };
  const AUTH_CLOSE_MESSAGES = {
    TOKEN_EXPIRED: "Su sesión expiró. Inicie sesión de nuevo.",
    UNAUTHORIZED: "Su sesión ya no es válida. Inicie sesión de nuevo.",
  };
  // Errors that do not end the question in flight: a late cancel's reply, and the notice
  // before an idle socket is closed (the page reconnects by itself at the next question).
  const NON_TERMINAL_ERRORS = new Set(["NOTHING_TO_CANCEL", "IDLE_TIMEOUT"]);

  const $ = (id) => document.getElementById(id);
  const dateTime = new Intl.DateTimeFormat("es-CO", { dateStyle: "medium", timeStyle: "short" });
  const dateOnly = new Intl.DateTimeFormat("es-CO", { dateStyle: "long" });

  const state = {
    token: null,
    expiryTimer: null,
    documentTypes: [], // [{document_type_id, code, name}]
    catalogReady: null, // a promise, awaited before replaying a session
    socket: null,
    socketReady: false, // true once the server said "connected"
    reconnectAttempt: 0,
    reconnectTimer: null,
    pendingQuery: null, // a query waiting for the socket to (re)connect
    // Each query carries an id that the server echoes on its events: frames of an abandoned
    // answer (cancelled, new conversation, other session) are recognised and ignored.
    lastQueryId: 0,
    inFlight: null, // {query, bubble, textEl, metaEl, streamNode}
    session: null, // {id, documentTypeId, documentNumber} of the conversation on screen
    patient: null, // {documentTypeId, documentNumber} whose header is shown before a question
    summaryKey: null, // "type/number" of the header shown (or being loaded)
    sources: new WeakMap(), // answer bubble -> Map(source_id -> source)
    lastCitation: null, // the [n] button to give focus back to when the panel closes
  };

  // -- small helpers ---------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function setMessage(node, text) {
    node.textContent = text || "";
    show(node, Boolean(text));
  }

  function formatDateTime(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? "" : dateTime.format(date);
  }

  function formatDay(isoDay) {
    // "2026-11-01" as a calendar day: new Date("2026-11-01") would be UTC midnight, which is
    // the previous day in Colombia.
    const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(isoDay || "");
    if (!match) return "Sin fecha";
    return dateOnly.format(new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  }

  function documentTypeByCode(code) {
    return state.documentTypes.find((t) => t.code === code) || null;
  }

  function documentTypeById(id) {
    return state.documentTypes.find((t) => t.document_type_id === id) || null;
  }

  // -- REST ------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** fetch() with the token; errors become ApiError carrying the envelope's Spanish message. */
  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    let response;
    try {
      response = await fetch(path, { ...options, headers, credentials: "omit" });
    } catch {
      throw new ApiError(0, "NETWORK", "No fue posible contactar al servidor.");
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) {
      const error = (body && body.error) || {};
      throw new ApiError(
        response.status,
        error.code || "HTTP_" + response.status,
        error.message || `Error del servidor (${response.status}).`,
      );
    }
    return body;
  }

  /** An authenticated call; a 401 means the token is gone, so back to the login form. */
  async function authed(path, options) {
    try {
      return await api(path, options);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401 && state.token) {
        logout(error.message);
      }
      throw error;
    }
  }

  // -- login / logout --------------------------------------------------------------------

  async function onLoginSubmit(event) {
    event.preventDefault();
    const email = $("login-email").value.trim();
    const password = $("login-password").value;
    setMessage($("login-error"), "");
    if (!email || !password) {
      setMessage($("login-error"), "Escriba su correo y su contraseña.");
      (email ? $("login-password") : $("login-email")).focus();
      return;
    }
    $("login-submit").disabled = true;
    try {
      const body = await api("/auth/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email, password }),
      });
      $("login-password").value = "";
      rememberToken(body.access_token, body.expires_in);
      enterApp();
    } catch (error) {
      setMessage($("login-error"), error.message);
      $("login-password").focus();
    } finally {
      $("login-submit").disabled = false;
    }
  }

  function rememberToken(token, expiresInSeconds) {
    const expiresAt = Date.now() + expiresInSeconds * 1000;
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify({ token, expiresAt }));
    scheduleExpiry(expiresAt);
  }

  function restoreToken() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null");
      if (saved && typeof saved.token === "string" && saved.expiresAt > Date.now() + 5000) {
        state.token = saved.token;
        scheduleExpiry(saved.expiresAt);
        return true;
      }
    } catch {
      /* a damaged entry is simply dropped */
    }
    sessionStorage.removeItem(TOKEN_KEY);
    return false;
  }

  function scheduleExpiry(expiresAt) {
    clearTimeout(state.expiryTimer);
    state.expiryTimer = setTimeout(
      () => logout(AUTH_CLOSE_MESSAGES.TOKEN_EXPIRED),
      Math.max(expiresAt - Date.now(), 0),
    );
  }

  function enterApp() {
    show($("login-view"), false);
    show($("app-view"), true);
    show($("logout"), true);
    show($("history-toggle"), true);
    show($("connection"), true);
    setMessage($("login-notice"), "");
    state.catalogReady = loadDocumentTypes();
    loadHistory();
    connectSocket();
    $("document-number").focus();
  }

  /** Forget the token, close the socket and clear every patient detail from the screen. */
  function logout(message) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(state.expiryTimer);
    clearTimeout(state.reconnectTimer);
    state.reconnectAttempt = 0;
    state.pendingQuery = null;
    const socket = state.socket;
    state.socket = null;
    state.socketReady = false;
    if (socket) socket.close(1000, "logout");
    closeSourcePanel();
    resetConversation();
    $("history-list").replaceChildren();
    $("document-type").replaceChildren();
    $("document-number").value = "";
    $("question").value = "";
    setSidebarOpen(false);
    show($("app-view"), false);
    show($("logout"), false);
    show($("history-toggle"), false);
    show($("connection"), false);
    show($("login-view"), true);
    setMessage($("login-notice"), message || "");
    $("login-email").focus();
  }

  // -- catalog and patient ---------------------------------------------------------------

  async function loadDocumentTypes() {
    try {
      state.documentTypes = await authed("/catalog/document-types");
    } catch (error) {
      setMessage($("patient-error"), error.message);
      return;
    }
    const select = $("document-type");
    select.replaceChildren(
      ...state.documentTypes.map((t) => {
        const option = el("option", "", `${t.code} · ${t.name}`);
        option.value = String(t.document_type_id);
        return option;
      }),
    );
    if (state.session) select.value = String(state.session.documentTypeId);
  }

  /** The patient fields are fixed while a conversation is open (a session has one patient). */
  function lockPatient(locked) {
    $("patient-fields").disabled = locked;
  }

  /** The patient card replaces the picker for the rest of the conversation; its header
   * (allergies, problems, medications, next appointment) is loaded once per patient. */
  function showPatient(info) {
    $("patient-name").textContent = info.full_name;
    $("patient-doc").textContent = `${info.document_type} ${info.document_number}`;
    show($("patient-card"), true);
    show($("patient-form"), false);
    setMessage($("patient-error"), "");
    if (info.document_type_id) {
      loadSummary(info.document_type_id, info.document_number).catch(showSummaryError);
    }
  }

  /** GET the patient's header (an audited access) unless it is already on screen. */
  async function loadSummary(typeId, number) {
    const key = `${typeId}/${String(number).toUpperCase()}`; // the server upper-cases it
    if (state.summaryKey === key) return null;
    state.summaryKey = key;
    setMessage($("patient-summary-error"), "");
    let summary;
    try {
      summary = await authed(`/patients/${typeId}/${encodeURIComponent(number)}/summary`);
    } catch (error) {
      if (state.summaryKey === key) state.summaryKey = null;
      throw error;
    }
    if (state.summaryKey !== key) return null; // another patient was chosen meanwhile
    window.SmartHealthHeader.render(summary);
    return summary;
  }

  function showSummaryError(error) {
    if (!state.token) return;
    setMessage(
      $("patient-summary-error"),
      `No se pudo cargar el encabezado del paciente: ${error.message}`,
    );
  }

  /** "Ver paciente" (or Enter in the document number): the header before any question. */
  async function onPatientSubmit(event) {
    event.preventDefault();
    const target = currentPatient();
    if (!target) return;
    $("patient-open").disabled = true;
    try {
      const summary = await loadSummary(target.document_type_id, target.document_number);
      if (summary) {
        state.patient = {
          documentTypeId: target.document_type_id,
          documentNumber: summary.patient.document_number,
        };
        showPatient(summary.patient);
      }
      $("question").focus();
    } catch (error) {
      setMessage($("patient-error"), error.message);
      $("document-number").focus();
    } finally {
      $("patient-open").disabled = false;
    }
  }

  // -- the WebSocket ---------------------------------------------------------------------

  function connectSocket() {
    if (!state.token || state.socket) return;
    clearTimeout(state.reconnectTimer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/ws/chat?token=${encodeURIComponent(state.token)}`;
    const socket = new WebSocket(url);
    state.socket = socket;
    state.socketReady = false;
    setConnection("Conectando…");
    // Handlers check the socket is still the current one: a replaced socket's late events
    // must not touch the page.
    socket.addEventListener("message", (event) => {
      if (socket === state.socket) onSocketMessage(event);
    });
    socket.addEventListener("close", (event) => {
      if (socket === state.socket) onSocketClose(event);
    });
  }

  function onSocketClose(event) {
    state.socket = null;
    state.socketReady = false;
    // A question already sent is lost with its socket; one still pending waits for the next.
    if (state.inFlight && !state.pendingQuery) {
      failAnswer("Se perdió la conexión; la respuesta quedó incompleta.");
    }
    if (!state.token) return;
    if (event.code === 1008) {
      // Authentication failed (expired, invalid, deactivated): reconnecting cannot help.
      logout(AUTH_CLOSE_MESSAGES[event.reason] || AUTH_CLOSE_MESSAGES.UNAUTHORIZED);
      return;
    }
    if (event.reason === "IDLE_TIMEOUT" && !state.pendingQuery) {
      // The server sheds idle sockets; reconnect when there is something to ask.
      setConnection("En espera");
      return;
    }
    scheduleReconnect();
  }

  /** Exponential backoff, 0.5 s doubling up to 10 s, with jitter so clients don't stampede. */
  function scheduleReconnect() {
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** state.reconnectAttempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    state.reconnectAttempt += 1;
    setConnection(`Sin conexión; reintentando en ${Math.ceil(delay / 1000)} s…`);
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = setTimeout(connectSocket, delay);
  }

  function setConnection(text) {
    $("connection").textContent = text;
    $("connection").dataset.state = state.socketReady ? "up" : "down";
  }

  function sendFrame(message) {
    state.socket.send(JSON.stringify(message));
  }

  /** Send now if connected; otherwise once the socket is (re)connected. */
  function sendQuery(query) {
    if (state.socketReady) {
      sendFrame(query);
    } else {
      state.pendingQuery = query;
      connectSocket();
    }
  }

  function flushPending() {
    if (state.pendingQuery && state.socketReady) {
      const query = state.pendingQuery;
      state.pendingQuery = null;
      sendFrame(query);
    }
  }

  function onSocketMessage(event) {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message.type === "connected") {
      state.socketReady = true;
      state.reconnectAttempt = 0;
      setConnection("Conectado");
      flushPending();
      return;
    }
    if (message.type === "pong") return;
    if ("id" in message && message.id !== state.inFlight?.query.id) return; // an abandoned answer
    const handler = HANDLERS[message.type];
    if (handler) handler(message);
  }

  const HANDLERS = {
    status: (m) => {
      if (state.inFlight) setStatus(m.message);
    },
    stream_start: onStreamStart,
    token: onToken,
    stream_end: () => {},
    complete: onComplete,
    cancelled: onCancelled,
    error: onServerError,
  };

  // -- asking ----------------------------------------------------------------------------

  function onAskSubmit(event) {
    event.preventDefault();
    if (state.inFlight) return;
    setMessage($("ask-error"), "");
    const question = $("question").value.replace(/\s+/g, " ").trim();
    const target = currentPatient();
    if (!target) return;
    if (question.length < 2) {
      setMessage($("ask-error"), "Escriba una pregunta (al menos 2 caracteres).");
      $("question").focus();
      return;
    }
    state.lastQueryId += 1;
    const query = { type: "query", id: state.lastQueryId, ...target, question };
    if (state.session) query.session_id = state.session.id;
    $("question").value = "";
    startAnswer(query);
    sendQuery(query);
  }

  /** The patient to ask about: the open conversation's, the one whose header is shown, or the
   * one typed in the picker. */
  function currentPatient() {
    const chosen = state.session || state.patient;
    if (chosen) {
      return {
        document_type_id: chosen.documentTypeId,
        document_number: chosen.documentNumber,
      };
    }
    const typeId = Number($("document-type").value);
    const number = $("document-number").value.trim();
    if (!typeId || !/^[A-Za-z0-9-]{3,20}$/.test(number)) {
      setMessage(
        $("patient-error"),
        "Indique el tipo y el número de documento del paciente (3 a 20 letras, números o guiones).",
      );
      (typeId ? $("document-number") : $("document-type")).focus();
      return null;
    }
    setMessage($("patient-error"), "");
    return { document_type_id: typeId, document_number: number };
  }

  function onQuestionKeydown(event) {
    // Enter sends; Shift+Enter keeps a line break; never while an IME is composing.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("ask-form").requestSubmit();
    }
  }

  /** Add the question and an empty answer bubble, and switch the form to "answering". */
  function startAnswer(query) {
    const turn = appendTurn(query.question);
    turn.textEl.append(el("span", "typing", "…"));
    state.inFlight = { query, ...turn, streamNode: null };
    lockPatient(true);
    setAnswering(true);
    setStatus("Enviando la pregunta…");
  }

  function onStreamStart(message) {
    if (!state.inFlight) return;
    const { query } = state.inFlight;
    // The server created (or continued) the session: later questions belong to it.
    state.session = {
      id: message.session_id,
      documentTypeId: query.document_type_id,
      documentNumber: query.document_number,
    };
    $("messages").setAttribute("aria-busy", "true"); // announce the answer once, when done
  }

  function onToken(message) {
    const answer = state.inFlight;
    if (!answer) return;
    if (!answer.streamNode) {
      answer.textEl.replaceChildren();
      answer.streamNode = document.createTextNode("");
      answer.textEl.append(answer.streamNode);
      answer.bubble.classList.add("streaming");
    }
    answer.streamNode.appendData(message.token);
    scrollToEnd();
  }

  function onComplete(body) {
    const answer = state.inFlight;
    if (!answer) return;
    // The final text is authoritative (the engine may have removed citations it streamed).
    renderAnswer(answer.bubble, answer.textEl, answer.metaEl, body);
    showPatient(body.patient_info);
    state.session = {
      id: body.session_id,
      documentTypeId: answer.query.document_type_id,
      documentNumber: body.patient_info.document_number,
    };
    answer.bubble.append(feedbackWidget(body.session_id, body.sequence_chat_id, null));
    finishAnswer("");
    loadHistory();
  }

  function onCancelled() {
    if (!state.inFlight) return;
    failAnswer("Respuesta cancelada.", "cancelled");
  }

  function onServerError(message) {
    const { code, message: text } = message.error;
    if (NON_TERMINAL_ERRORS.has(code)) return;
    if (!state.inFlight) {
      setStatus(text);
      return;
    }
    if (code === "PATIENT_NOT_FOUND") setMessage($("patient-error"), text);
    failAnswer(text, "error");
  }

  /** End the answer in flight with a note instead of (or after) its text. */
  function failAnswer(note, kind = "error") {
    const answer = state.inFlight;
    if (!answer) return;
    if (!answer.streamNode) answer.textEl.replaceChildren();
    answer.bubble.classList.add(kind === "cancelled" ? "is-cancelled" : "is-error");
    answer.metaEl.textContent = note;
    finishAnswer(kind === "cancelled" ? note : "");
  }

  function finishAnswer(status) {
    const answer = state.inFlight;
    state.inFlight = null;
    if (answer) answer.bubble.classList.remove("streaming");
    $("messages").removeAttribute("aria-busy");
    lockPatient(Boolean(state.session));
    setAnswering(false);
    setStatus(status);
    scrollToEnd();
  }

  /** Cancel: the bubble says so at once; the server's late frames are ignored by their id. */
  function onCancelClick() {
    if (abandonAnswer()) failAnswer("Respuesta cancelada.", "cancelled");
  }

  /** Tell the server to stop the answer in flight (if it was sent); true if there was one. */
  function abandonAnswer() {
    if (!state.inFlight) return false;
    if (state.pendingQuery) {
      state.pendingQuery = null; // it never left the page
    } else if (state.socketReady) {
      // The server finishes the cancelled answer before it reads the next query.
      sendFrame({ type: "cancel" });
    }
    return true;
  }

  function setAnswering(answering) {
    $("send").disabled = answering;
    show($("cancel"), answering);
  }

  function setStatus(text) {
    $("status-line").textContent = text || "";
  }

  // -- rendering messages ----------------------------------------------------------------

  /** A question bubble and an (empty) answer bubble; returns the answer's parts. */
  function appendTurn(question) {
    const messages = $("messages");
    show($("empty-chat"), false);
    const asked = el("div", "msg msg-question");
    asked.append(el("p", "msg-who", "Pregunta"), el("p", "msg-text", question));
    const bubble = el("div", "msg msg-answer");
    const textEl = el("p", "msg-text");
    const metaEl = el("p", "msg-meta");
    bubble.append(el("p", "msg-who", "SmartHealth"), textEl, metaEl);
    messages.append(asked, bubble);
    scrollToEnd();
    return { bubble, textEl, metaEl };
  }

  /** Answer text with each [n] turned into a button opening source n (when it was cited). */
  function renderAnswer(bubble, textEl, metaEl, body) {
    const sources = new Map((body.sources || []).map((s) => [Number(s.source_id), s]));
    state.sources.set(bubble, sources);
    const pieces = String(body.answer.text).split(CITATION);
    textEl.replaceChildren(
      ...pieces.filter(Boolean).map((piece) => {
        const match = /^\[(\d+)\]$/.exec(piece);
        if (match && sources.has(Number(match[1]))) return citationButton(Number(match[1]));
        return document.createTextNode(piece);
      }),
    );
    for (const old of bubble.querySelectorAll(".series-chart")) old.remove();
    for (const figure of window.SmartHealthChart.render(body.series)) {
      bubble.insertBefore(figure, metaEl);
    }
    const confidence = Math.round(Number(body.answer.confidence) * 100);
    const count = sources.size;
    metaEl.textContent =
      `Confianza ${confidence} % · ${count} ${count === 1 ? "fuente" : "fuentes"}` +
      ` · ${body.answer.model_used}`;
  }

  function citationButton(number) {
    const button = el("button", "citation", `[${number}]`);
    button.type = "button";
    button.dataset.sourceId = String(number);
    button.setAttribute("aria-label", `Ver fuente ${number}`);
    button.setAttribute("aria-haspopup", "dialog");
    return button;
  }

  function scrollToEnd() {
    const messages = $("messages");
    messages.scrollTop = messages.scrollHeight;
  }

  /** Clear the conversation on screen (not the history). */
  function resetConversation() {
    if (abandonAnswer()) failAnswer("", "cancelled");
    state.session = null;
    state.patient = null;
    state.summaryKey = null;
    window.SmartHealthHeader.render(null);
    setMessage($("patient-summary-error"), "");
    $("messages").replaceChildren($("empty-chat"));
    show($("empty-chat"), true);
    show($("patient-card"), false);
    show($("patient-form"), true);
    setMessage($("patient-error"), "");
    setMessage($("ask-error"), "");
    setStatus("");
    lockPatient(false);
    markActiveHistory();
  }

  function onNewChat() {
    resetConversation();
    setSidebarOpen(false);
    $("document-number").focus();
  }

  // -- the source panel ------------------------------------------------------------------

  // A [n] in the text, a point of a chart or a row of its table: each opens its source.
  const SOURCE_LINK = "button.citation, .chart-point[data-source-id]";

  function onMessagesClick(event) {
    const button = event.target.closest(SOURCE_LINK);
    if (!button) return;
    const bubble = button.closest(".msg-answer");
    const source = state.sources.get(bubble)?.get(Number(button.dataset.sourceId));
    if (source) openSourcePanel(source, button);
  }

  /** Chart points are SVG, not buttons: Enter and Space open their source too. */
  function onMessagesKeydown(event) {
    if (event.key !== "Enter" && event.key !== " ") return;
    if (!event.target.closest(".chart-point[data-source-id]")) return;
    event.preventDefault();
    onMessagesClick(event);
  }

  /** The citations of the source open in the panel are highlighted in its answer. */
  function highlightSource(bubble, sourceId) {
    for (const node of $("messages").querySelectorAll(".is-highlighted")) {
      node.classList.remove("is-highlighted");
    }
    if (!bubble || sourceId === null) return;
    for (const node of bubble.querySelectorAll(`[data-source-id="${Number(sourceId)}"]`)) {
      node.classList.add("is-highlighted");
    }
  }

  function openSourcePanel(source, button) {
    state.lastCitation = button;
    highlightSource(button.closest(".msg-answer"), source.source_id);
    $("source-title").textContent = `Fuente [${source.source_id}]`;
    $("source-type").textContent = SOURCE_TYPES[source.type] || source.type;
    $("source-date").textContent = formatDay(source.date);
    const score = Number(source.relevance_score);
    $("source-score").textContent = Number.isFinite(score) ? `${Math.round(score * 100)} %` : "—";
    $("source-text").textContent = source.text;
    const panel = $("source-panel");
    if (!panel.open) panel.showModal(); // modal: Escape closes it and focus stays inside
    $("source-close").focus();
  }

  function closeSourcePanel() {
    const panel = $("source-panel");
    if (panel.open) panel.close();
  }

  function onSourcePanelClose() {
    highlightSource(null, null);
    // The close event comes a task after the panel closed: give focus back to the citation only
    // if it was not taken meanwhile (the user may already be typing the next question).
    const active = document.activeElement;
    const adrift = !active || active === document.body || $("source-panel").contains(active);
    if (adrift && state.lastCitation && state.lastCitation.isConnected) state.lastCitation.focus();
    state.lastCitation = null;
  }

  // -- history ---------------------------------------------------------------------------

  async function loadHistory() {
    let page;
    try {
      page = await authed("/history/?page_size=50");
    } catch (error) {
      if (state.token) setMessage($("history-error"), error.message);
      return;
    }
    if (!state.token) return; // logged out meanwhile
    setMessage($("history-error"), "");
    show($("history-empty"), page.items.length === 0);
    $("history-list").replaceChildren(...page.items.map(historyItem));
    markActiveHistory();
  }

  function historyItem(item) {
    const button = el("button", "history-item");
    button.type = "button";
    button.dataset.sessionId = item.session_id;
    const when = el("time", "history-date", formatDateTime(item.last_activity_at));
    when.dateTime = item.last_activity_at;
    button.append(
      el("span", "history-patient", item.patient_name),
      el("span", "history-question", item.first_question || "Sin preguntas respondidas"),
      when,
    );
    const li = el("li");
    li.append(button);
    return li;
  }

  function markActiveHistory() {
    const current = state.session && state.session.id;
    for (const button of $("history-list").querySelectorAll(".history-item")) {
      if (button.dataset.sessionId === current) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
  }

  function onHistoryClick(event) {
    const button = event.target.closest(".history-item");
    if (button) openSession(button.dataset.sessionId);
  }

  /** Replay a past conversation and continue it: later questions carry its session_id. */
  async function openSession(sessionId) {
    setMessage($("history-error"), "");
    let detail;
    try {
      await state.catalogReady;
      detail = await authed(`/history/sessions/${encodeURIComponent(sessionId)}`);
    } catch (error) {
      setMessage($("history-error"), error.message);
      return;
    }
    const summary = detail.session;
    // History gives the document type's code; queries need its id.
    const type = documentTypeByCode(summary.document_type);
    if (!type) {
      setMessage($("history-error"), "No se reconoce el tipo de documento de esta conversación.");
      return;
    }
    resetConversation();
    state.session = {
      id: summary.session_id,
      documentTypeId: type.document_type_id,
      documentNumber: summary.document_number,
    };
    $("document-type").value = String(type.document_type_id);
    $("document-number").value = summary.document_number;
    lockPatient(true);
    showPatient({
      full_name: summary.patient_name,
      document_type: summary.document_type,
      document_type_id: type.document_type_id,
      document_number: summary.document_number,
    });
    detail.turns.forEach(replayTurn);
    markActiveHistory();
    setSidebarOpen(false);
    $("question").focus();
  }

  function replayTurn(turn) {
    const { bubble, textEl, metaEl } = appendTurn(turn.question);
    if (turn.response && turn.response.answer) {
      renderAnswer(bubble, textEl, metaEl, turn.response);
      bubble.append(feedbackWidget(state.session.id, turn.sequence_chat_id, turn.feedback));
    } else {
      textEl.textContent = turn.answer || "(sin respuesta)";
    }
    metaEl.prepend(document.createTextNode(`${formatDateTime(turn.created_at)} · `));
  }

  // -- feedback on an answer: 👍, or 👎 with an optional reason and comment ----------------

  const FEEDBACK_REASONS = [
    ["incorrect", "Incorrecta"],
    ["incomplete", "Incompleta"],
    ["wrong_source", "Fuente equivocada"],
    ["other", "Otra"],
  ];

  /** The rating controls of one answer (POST /feedback; rating again replaces the rating). */
  function feedbackWidget(sessionId, sequence, current) {
    const box = el("div", "feedback");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Valorar esta respuesta");
    const up = el("button", "feedback-up", "👍");
    const down = el("button", "feedback-down", "👎");
    up.setAttribute("aria-label", "Respuesta útil");
    down.setAttribute("aria-label", "Respuesta con problemas");
    const form = el("form", "feedback-form");
    form.hidden = true;
    const reason = el("select", "feedback-reason");
    reason.setAttribute("aria-label", "Motivo");
    reason.append(new Option("Motivo (opcional)", ""));
    for (const [value, label] of FEEDBACK_REASONS) reason.append(new Option(label, value));
    const comment = el("input", "feedback-comment");
    comment.type = "text";
    comment.maxLength = 1000;
    comment.placeholder = "Comentario (opcional)";
    comment.setAttribute("aria-label", "Comentario");
    const send = el("button", "feedback-send", "Enviar valoración");
    form.append(reason, comment, send);
    const note = el("span", "feedback-note");
    note.setAttribute("role", "status");
    for (const button of [up, down]) button.type = "button";
    box.append(up, down, form, note);

    const mark = (rating) => {
      up.setAttribute("aria-pressed", String(rating === "up"));
      down.setAttribute("aria-pressed", String(rating === "down"));
    };
    const submit = async (rating, extra) => {
      note.textContent = "Enviando…";
      try {
        const saved = await authed("/feedback", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ session_id: sessionId, sequence_chat_id: sequence, rating, ...extra }),
        });
        mark(saved.rating);
        note.textContent = "Gracias por su valoración.";
        return true;
      } catch (error) {
        note.textContent = error.message;
        return false;
      }
    };
    up.addEventListener("click", () => {
      form.hidden = true;
      submit("up", {});
    });
    down.addEventListener("click", () => {
      form.hidden = false;
      note.textContent = "";
      reason.focus();
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const extra = {};
      if (reason.value) extra.reason = reason.value;
      if (comment.value.trim()) extra.comment = comment.value.trim();
      if (await submit("down", extra)) form.hidden = true;
    });
    mark(current ? current.rating : null);
    if (current) {
      reason.value = current.reason || "";
      comment.value = current.comment || "";
    }
    return box;
  }

  // -- narrow screens: the sidebar slides over the chat -----------------------------------

  function setSidebarOpen(open) {
    $("app-view").classList.toggle("sidebar-open", open);
    $("history-toggle").setAttribute("aria-expanded", String(open));
    show($("sidebar-backdrop"), open);
    if (open) $("new-chat").focus();
  }

  function onToggleSidebar() {
    setSidebarOpen(!$("app-view").classList.contains("sidebar-open"));
  }

  function onDocumentKeydown(event) {
    if (event.key === "Escape" && $("app-view").classList.contains("sidebar-open")) {
      setSidebarOpen(false);
      $("history-toggle").focus();
    }
  }

  // -- wiring ----------------------------------------------------------------------------

  function init() {
    $("login-form").addEventListener("submit", onLoginSubmit);
    $("logout").addEventListener("click", () => logout("Sesión cerrada."));
    $("patient-form").addEventListener("submit", onPatientSubmit);
    $("ask-form").addEventListener("submit", onAskSubmit);
    $("question").addEventListener("keydown", onQuestionKeydown);
    $("cancel").addEventListener("click", onCancelClick);
    $("messages").addEventListener("click", onMessagesClick);
    $("messages").addEventListener("keydown", onMessagesKeydown);
    $("new-chat").addEventListener("click", onNewChat);
    $("history-refresh").addEventListener("click", loadHistory);
    $("history-list").addEventListener("click", onHistoryClick);
    $("history-toggle").addEventListener("click", onToggleSidebar);
    $("sidebar-backdrop").addEventListener("click", () => setSidebarOpen(false));
    $("source-close").addEventListener("click", closeSourcePanel);
    $("source-panel").addEventListener("close", onSourcePanelClose);
    // A click on the dimmed backdrop lands on the <dialog> itself.
    $("source-panel").addEventListener("click", (e) => {
      if (e.target === e.currentTarget) closeSourcePanel();
    });
    document.addEventListener("keydown", onDocumentKeydown);
    window.addEventListener("online", () => {
      if (state.token && !state.socket) connectSocket();
    });
    if (restoreToken()) enterApp();
    else $("login-email").focus();
  }

  init();
})();
