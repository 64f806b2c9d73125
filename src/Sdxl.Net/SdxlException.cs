namespace Sdxl.Net;

/// <summary>
/// The base of every fault that Sdxl.Net reports itself: a model folder, config or file that cannot be used
/// (<see cref="SdxlModelException"/>) or unusable numbers (<see cref="SdxlNumericException"/>); invalid hosting options
/// are Microsoft.Extensions.Options' <c>OptionsValidationException</c>. Invalid request values are
/// <see cref="ArgumentException"/>s and cancellation is <see cref="OperationCanceledException"/>, as in .NET itself;
/// catching <see cref="SdxlException"/> catches everything else the library reports on purpose.
/// </summary>
public abstract class SdxlException : Exception
{
    /// <summary>Creates the exception with a message that says what was wrong and what is allowed.</summary>
    protected SdxlException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the underlying cause.</summary>
    protected SdxlException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>A model folder or model file that cannot be used: missing, corrupt, or with an unexpected signature.</summary>
public class SdxlModelException : SdxlException
{
    /// <summary>Creates the exception with a message that names the component and what was expected.</summary>
    public SdxlModelException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the underlying cause.</summary>
    public SdxlModelException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A generation that ran but produced unusable numbers (NaN or infinity), with the likely cause in the message.</summary>
public class SdxlNumericException : SdxlException
{
    /// <summary>Creates the exception with a message that names the likely cause and the fix.</summary>
    public SdxlNumericException(string message) : base(message) { }
}
