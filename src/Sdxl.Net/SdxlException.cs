namespace Sdxl.Net;

/// <summary>The base of the exceptions Sdxl.Net throws for its own failures (model folders, numerics, …), so callers can catch them together.</summary>
public class SdxlException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SdxlException() { }

    /// <summary>Creates the exception with a message.</summary>
    public SdxlException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the underlying cause.</summary>
    public SdxlException(string message, Exception innerException) : base(message, innerException) { }
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
