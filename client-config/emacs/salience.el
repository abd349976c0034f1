;;; salience.el --- Prompt attribution heatmaps from the salience language server  -*- lexical-binding: t; -*-

;; Usage: (load "/path/to/salience/client-config/emacs/salience.el"), then open a prompt file.
;; With lsp-mode (semantic tokens: the heatmap as background faces) or eglot (inlay hints, hover,
;; diagnostics; eglot has no semantic tokens).  `salience-client' picks one; the default uses lsp-mode
;; when it is installed, else eglot.

;;; Code:

(require 'seq)

(defgroup salience nil
  "Prompt attribution from the salience language server."
  :group 'tools :prefix "salience-")

(defcustom salience-server-command '("salience" "serve")
  "The command line that starts the server."
  :type '(repeat string))

(defcustom salience-client 'auto
  "Which LSP client to use: `lsp-mode', `eglot' or `auto'.
`auto' uses lsp-mode when it is installed, else eglot."
  :type '(choice (const auto) (const lsp-mode) (const eglot)))

(defcustom salience-settings '(:inlayTopK 5)
  "Server settings (the `salience' section), as a plist with camelCase keys."
  :type 'plist)

(defface salience-level-1 '((((background dark)) :background "#2b3a2b") (t :background "#f4f1d0"))
  "Attribution level 1 (faint).")
(defface salience-level-2 '((((background dark)) :background "#3d5a2a") (t :background "#f3e6a6"))
  "Attribution level 2.")
(defface salience-level-3 '((((background dark)) :background "#5f7d1f") (t :background "#f7d27a"))
  "Attribution level 3.")
(defface salience-level-4 '((((background dark)) :background "#8f6a12") (t :background "#f7ab55"))
  "Attribution level 4.")
(defface salience-level-5 '((((background dark)) :background "#b8420a") (t :background "#f47c3c"))
  "Attribution level 5 (the tokens the model relies on most).")
(defface salience-negative '((t :underline (:color "#3f8fff" :style wave)))
  "A token that lowers the target's score.")

;;;###autoload
(define-derived-mode salience-prompt-mode text-mode "Prompt"
  "Major mode for prompt files explained by the salience language server."
  (setq-local comment-start "<!-- ")
  (setq-local comment-end " -->")
  (visual-line-mode 1))

;;;###autoload
(add-to-list 'auto-mode-alist '("\\.prompt\\(?:\\.md\\|\\.txt\\)?\\'" . salience-prompt-mode))
;;;###autoload
(add-to-list 'auto-mode-alist '("\\.prompty\\'" . salience-prompt-mode))

(defun salience--use-lsp-mode-p ()
  "Non-nil when lsp-mode is the client to use."
  (or (eq salience-client 'lsp-mode)
      (and (eq salience-client 'auto) (locate-library "lsp-mode"))))

;;; lsp-mode: semantic tokens become the heatmap faces.

(defvar lsp-language-id-configuration)
(defvar lsp-semantic-tokens-enable)
(defvar lsp-inlay-hint-enable)
(defvar lsp-semantic-token-faces)
(defvar lsp-semantic-token-modifier-faces)
(defvar lsp-semantic-tokens-apply-modifiers)
(declare-function lsp-register-client "lsp-mode")
(declare-function make-lsp-client "lsp-mode")
(declare-function lsp-stdio-connection "lsp-mode")
(declare-function lsp-activate-on "lsp-mode")
(declare-function lsp-deferred "lsp-mode")
(declare-function lsp-send-execute-command "lsp-mode")
(declare-function lsp-semantic-tokens-mode "lsp-semantic-tokens")
(declare-function lsp--semantic-tokens-request "lsp-semantic-tokens")
(declare-function lsp--uri-to-path "lsp-mode")

(with-eval-after-load 'lsp-mode
  (add-to-list 'lsp-language-id-configuration '(salience-prompt-mode . "prompt"))
  (lsp-register-client
   (make-lsp-client
    :new-connection (lsp-stdio-connection (lambda () salience-server-command))
    :activation-fn (lsp-activate-on "prompt")
    :server-id 'salience
    :initialization-options (lambda () salience-settings)
    :notification-handlers (let ((handlers (make-hash-table :test #'equal)))
                             (puthash "salience/scores" #'salience--lsp-scores handlers)
                             handlers)
    :semantic-tokens-faces-overrides
    '(:types (("salience1" . salience-level-1) ("salience2" . salience-level-2)
              ("salience3" . salience-level-3) ("salience4" . salience-level-4)
              ("salience5" . salience-level-5))
      :modifiers (("negative" . salience-negative)))))
  ;; lsp-mode 8 applies face overrides only to the standard token types: register ours (no other
  ;; server uses these names) in the global maps as well.
  (with-eval-after-load 'lsp-semantic-tokens
    (dolist (level '(1 2 3 4 5))
      (add-to-list 'lsp-semantic-token-faces
                   (cons (format "salience%d" level) (intern (format "salience-level-%d" level)))))
    (add-to-list 'lsp-semantic-token-modifier-faces '("negative" . salience-negative)))
  ;; lsp-mode only hooks semantic tokens up when `lsp-semantic-tokens-enable' is set globally when it
  ;; loads; turn them on for prompt buffers whatever the global setting.
  (add-hook 'lsp-configure-hook #'salience--lsp-semantic-tokens))

(defun salience--lsp-scores (_workspace params)
  "Fetch a buffer's tokens again on a new result (`salience/scores', PARAMS).
lsp-mode honours the server's semantic-token refresh only when
`lsp-semantic-tokens-enable' is set globally, so the heatmap would
otherwise keep showing the previous result."
  (let* ((uri (if (hash-table-p params) (gethash "uri" params) (plist-get params :uri)))
         (buffer (and uri (find-buffer-visiting (lsp--uri-to-path uri)))))
    (when buffer
      (with-current-buffer buffer
        (when (bound-and-true-p lsp-semantic-tokens-mode)
          (lsp--semantic-tokens-request nil t))))))

(defun salience--lsp-semantic-tokens ()
  "Show the heatmap (semantic tokens) in a prompt buffer managed by lsp-mode."
  (when (and (derived-mode-p 'salience-prompt-mode) (fboundp 'lsp-semantic-tokens-mode))
    (setq-local lsp-semantic-tokens-apply-modifiers t)  ; the `negative' modifier
    (lsp-semantic-tokens-mode 1)))

;;; eglot: inlay hints, hover (eldoc) and diagnostics (flymake); no semantic tokens.

(defvar eglot-server-programs)
(declare-function eglot-ensure "eglot")
(declare-function eglot-current-server "eglot")
(declare-function eglot-execute-command "eglot")
(declare-function eglot-inlay-hints-mode "eglot")

(with-eval-after-load 'eglot
  (add-to-list 'eglot-server-programs
               `(salience-prompt-mode . (,@salience-server-command :initializationOptions ,salience-settings))))

(defun salience--start ()
  "Start the chosen LSP client in a prompt buffer."
  (if (salience--use-lsp-mode-p)
      (progn (require 'lsp-mode)
             (setq-local lsp-semantic-tokens-enable t)
             (setq-local lsp-inlay-hint-enable t)
             (lsp-deferred))
    (when (require 'eglot nil t)
      (eglot-ensure)
      (add-hook 'eglot-managed-mode-hook
                (lambda () (when (fboundp 'eglot-inlay-hints-mode) (eglot-inlay-hints-mode 1)))
                nil t))))

(add-hook 'salience-prompt-mode-hook #'salience--start)

;;; Commands: the server's, on the current buffer.

(defun salience--command (name &rest args)
  "Run the server command NAME on the current buffer with ARGS."
  (let ((arguments (vconcat (list (concat "file://" (expand-file-name buffer-file-name))) args)))
    (cond ((and (fboundp 'eglot-current-server) (eglot-current-server))
           (eglot-execute-command (eglot-current-server) name arguments))
          ((fboundp 'lsp-send-execute-command) (lsp-send-execute-command name arguments))
          (t (user-error "salience: no language server in this buffer")))))

(defun salience-run ()
  "Attribute the current prompt now."
  (interactive) (salience--command "salience.run"))

(defun salience-set-method (method)
  "Explain the current prompt with METHOD."
  (interactive (list (completing-read "salience method: "
                                      '("input_x_gradient" "attnlrp" "saliency" "integrated_gradients"
                                        "occlusion" "attention" "sequential_integrated_gradients"
                                        "reagent" "textgenshap" "lime" "kernelshap"))))
  (salience--command "salience.setMethod" method))

(defun salience-set-target (text)
  "Explain TEXT instead of the model's own continuation (empty: the continuation)."
  (interactive "sText to explain (empty for the continuation): ")
  (if (equal text "") (salience--command "salience.setTarget") (salience--command "salience.setTarget" text)))

(defun salience-clear ()
  "Remove the heatmap."
  (interactive) (salience--command "salience.clear"))

(defun salience-faithfulness ()
  "Measure how faithful the shown scores are."
  (interactive) (salience--command "salience.faithfulness"))

(provide 'salience)
;;; salience.el ends here
